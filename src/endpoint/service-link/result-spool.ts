/**
 * Result batches kept on disk until the forwarder acknowledges them: one file per batch (0600, in a 0700
 * folder), written to a temporary name and renamed so a crash never leaves half a batch behind.
 * Used by ForwarderClient; a restarted endpoint finds its unacknowledged results here and sends them again.
 *
 * A batch is made first (`batch`) and written when its owner says (`persist`): ForwarderClient writes only
 * the batches not acknowledged soon (RESULT_SPOOL_DEFAULTS), so a round trip's results cost no disk work.
 */
import { chmodSync, mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encode } from '../../protocol/codec.js';
import { parseFromEndpoint, type ResultBatchMessage } from '../../protocol/forwarder-messages.js';
import type { ResultEnvelope } from '../../protocol/messages.js';
import { FuncxError } from '../../errors.js';
import { silentLogger, type Logger } from '../../logger.js';

/** One batch: its sequence number (what the forwarder acks), the encoded `results` message, its task ids. */
export interface SpooledBatch {
  seq: number;
  frame: Buffer;
  ids: string[];
  file: string;
  /** When it was last sent (0: never, or the send failed). */
  sentAt: number;
  /** When it was made (Date.now()): ForwarderClient writes it once unacknowledged this long. */
  madeAt: number;
  /**
   * Unset until `persist`; then resolves once the batch is on disk under its final name (rejects with
   * RESULTS_NOT_SAVED). A batch loaded from disk has it resolved.
   */
  written?: Promise<void>;
  /** Acknowledged: never written from now on (`persist` does nothing). */
  removed?: boolean;
}

export class ResultSpool {
  private nextSeq = 1;

  constructor(
    readonly dir: string,
    private readonly log: Logger = silentLogger,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }

  /** The batches an earlier run left unacknowledged, oldest first. */
  load(): SpooledBatch[] {
    const batches: SpooledBatch[] = [];
    for (const name of readdirSync(this.dir).sort()) {
      const file = join(this.dir, name);
      // A .tmp is a write cut short by a crash: its results were never reported as persisted.
      if (name.endsWith('.tmp')) unlinkSync(file);
      if (!name.endsWith('.batch')) continue;
      try {
        const frame = readFileSync(file);
        const m = parseFromEndpoint('results', frame) as ResultBatchMessage;
        batches.push({ seq: m.seq, frame, ids: m.results.map((r) => r.id), file, sentAt: 0, madeAt: Date.now(), written: Promise.resolve() });
        this.nextSeq = Math.max(this.nextSeq, m.seq + 1);
      } catch (err) {
        this.log.error(`unreadable result batch ${file} left in place: ${(err as Error).message}`);
      }
    }
    return batches;
  }

  /** A new batch, not on disk yet (`persist` writes it); `running`: starts of its tasks it tells as well. */
  batch(results: ResultEnvelope[], running: readonly string[] = []): SpooledBatch {
    const seq = this.nextSeq++;
    const frame = encode(running.length > 0 ? { kind: 'results', seq, results, running: [...running] } : { kind: 'results', seq, results });
    const file = join(this.dir, `${String(seq).padStart(12, '0')}.batch`);
    return { seq, frame, ids: results.map((r) => r.id), file, sentAt: 0, madeAt: Date.now() };
  }

  /**
   * Start writing the batch to disk, once (later calls return the same promise); an acknowledged batch is
   * not written. The owner may send a batch before or without writing it: if the process dies first, the
   * forwarder either has the results or sends the tasks again (it requeues what a lost connection held).
   */
  persist(batch: SpooledBatch): Promise<void> {
    if (batch.removed) return Promise.resolve();
    batch.written ??= (async () => {
      try {
        await writeFile(`${batch.file}.tmp`, batch.frame, { mode: 0o600 });
        await rename(`${batch.file}.tmp`, batch.file);
      } catch (err) {
        throw new FuncxError('RESULTS_NOT_SAVED', `cannot save results to ${batch.file}: ${(err as Error).message}`);
      }
    })();
    batch.written.catch(() => {}); // the owner of the batch reports it
    return batch.written;
  }

  /** The forwarder has the batch: forget it (once its write, if any, finished, so no file is left behind). */
  remove(batch: SpooledBatch): void {
    batch.removed = true;
    batch.written
      ?.then(() => unlink(batch.file))
      .catch((err) => this.log.warn(`cannot remove ${batch.file}: ${(err as Error).message}`));
  }
}
