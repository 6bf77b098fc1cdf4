/**
 * A forwarder's result intake: result batches are checked against the service's size limit, written to the
 * tasks table without decoding their payloads (with the starts the endpoint reported for them), acked, and
 * the long-polls they finish are woken. Starts whose results have not come yet are written on a timer.
 */
import { encode } from '../../protocol/codec.js';
import type { ForwarderChannel, ResultBatchMessage } from '../../protocol/forwarder-messages.js';
import type { ResultEnvelope } from '../../protocol/messages.js';
import { errorOutcome } from '../../protocol/payload.js';
import type { SocketWriter } from '../../protocol/socket-writer.js';
import type { Store, StoredResults } from '../store/index.js';
import { SerialLane } from '../serial-lane.js';
import { SERVICE_DEFAULTS } from '../limits.js';
import type { StoredOutcome } from '../routes/long-poll.js';

/** Longest a reported start waits for a result batch to be written with before it is written alone. */
const RUNNING_FLUSH_MS = SERVICE_DEFAULTS.runningFlushMs;

export interface ResultIntakeOptions {
  endpointId: string;
  store: Store;
  /** Largest result payload stored (ForwarderOptions.maxResultBytes, filled). */
  maxResultBytes: number;
  /** The forwarder's writers (shared): acks go out on `writers.results`. */
  writers: Record<ForwarderChannel, SocketWriter>;
  onResults?: (taskIds: string[], outcome?: (id: string) => StoredOutcome | undefined) => void;
  warn: (m: string) => void;
}

export class ResultIntake {
  /** Result and running writes, in the order they came (a timer's running flush never overtakes a result). */
  readonly lane = new SerialLane();
  /** Tasks the endpoint said started, not written yet: they go with the next result batch (one transaction). */
  private runningIds: string[] = [];
  /** Writes `runningIds` alone when their results did not come within RUNNING_FLUSH_MS (one timer per forwarder). */
  private runningTimer?: NodeJS.Timeout;

  constructor(private readonly o: ResultIntakeOptions) {}

  /**
   * Write a batch of results, in the results lane, with the starts it carries and those that waited for it.
   * Rejects when the store fails: the batch is then not acked and the endpoint sends it again (the starts
   * are best effort).
   */
  store(m: ResultBatchMessage): Promise<StoredResults> {
    const results = this.withinLimit(m.results);
    const running = this.takeRunningOf(results);
    // Starts the endpoint held for this batch to carry (forwarder-messages.ts).
    if (m.running) for (const id of m.running) running.push(id);
    return this.lane.run(() => this.write(results, running));
  }

  /** Tell the endpoint batch `seq` is stored (it may drop it from its disk). */
  ack(routingId: Buffer, seq: number, out: StoredResults): void {
    // The ack after the requests these results woke have answered (they answer in this turn's microtasks): a
    // ZeroMQ send wakes the I/O thread, which on a busy 2-CPU machine preempted the answer (call p50, issue 14).
    const ack = encode({ kind: 'ack', seq, stored: out.stored.length, duplicates: out.duplicates });
    setImmediate(() => this.o.writers.results.send([routingId, ack]));
  }

  /** The endpoint says these tasks started: written with their results, or alone after RUNNING_FLUSH_MS. */
  started(ids: readonly string[]): void {
    for (const id of ids) this.runningIds.push(id);
    if (!this.runningTimer) {
      this.runningTimer = setTimeout(() => this.flushRunning(), RUNNING_FLUSH_MS);
      this.runningTimer.unref();
    }
  }

  /** Write the reported starts on their own: no result batch came to carry them. */
  flushRunning(): Promise<void> {
    const ids = this.takeRunning();
    if (ids.length === 0) return Promise.resolve();
    return this.lane.run(async () => {
      await this.o.store.markRunning(this.o.endpointId, ids);
    }).catch((err) => this.o.warn(`cannot record ${ids.length} tasks as running: ${(err as Error).message}`));
  }

  /** Store results (outside the lane: the caller orders it) and wake the long-polls of those stored. */
  async write(results: ResultEnvelope[], running: readonly string[] = []): Promise<StoredResults> {
    const out = await this.o.store.storeResults(this.o.endpointId, results, running);
    if (out.unknown > 0) this.o.warn(`dropped ${out.unknown} results for tasks that are not endpoint ${this.o.endpointId}'s`);
    if (out.stored.length > 0) this.o.onResults?.(out.stored, out.at === undefined ? undefined : storedOutcomes(results, out.at));
    return out;
  }

  /**
   * The reported starts of tasks in this result batch (written with their results: one write per task, not
   * two). The other starts wait for their own results, or for the timer RUNNING_FLUSH_MS after they came.
   */
  private takeRunningOf(results: readonly ResultEnvelope[]): string[] {
    if (this.runningIds.length === 0) return [];
    const finishing = new Set<string>();
    for (const r of results) finishing.add(r.id);
    const now: string[] = [];
    const later: string[] = [];
    for (const id of this.runningIds) (finishing.has(id) ? now : later).push(id);
    this.runningIds = later;
    if (later.length === 0) {
      clearTimeout(this.runningTimer);
      this.runningTimer = undefined;
    }
    return now;
  }

  /** The reported starts not written yet (the caller writes them). */
  private takeRunning(): string[] {
    clearTimeout(this.runningTimer);
    this.runningTimer = undefined;
    const ids = this.runningIds;
    this.runningIds = [];
    return ids;
  }

  /**
   * The service's own size check: the worker's limit is the endpoint owner's to change, and any user may run an
   * endpoint. An oversized result is replaced by a ResultTooLarge error for that task (nothing else is copied).
   */
  private withinLimit(results: ResultEnvelope[]): ResultEnvelope[] {
    const limit = this.o.maxResultBytes;
    let out = results;
    for (let i = 0; i < results.length; i++) {
      const r = results[i];
      if (r.payload.length <= limit) continue;
      if (out === results) out = results.slice();
      this.o.warn(`endpoint ${this.o.endpointId} sent a result of ${r.payload.length} bytes for task ${r.id}: stored as ResultTooLarge`);
      out[i] = {
        id: r.id,
        failed: true,
        payload: errorOutcome('ResultTooLarge', `result of task ${r.id} is ${r.payload.length} bytes, over the service's limit of ${limit} bytes`),
      };
    }
    return out;
  }
}

/**
 * What a batch stored, by task id, for the long-polls it wakes (built on the first lookup: most batches wake
 * nobody). The first result of an id in the batch is the stored one; a later one was a duplicate.
 */
function storedOutcomes(results: readonly ResultEnvelope[], at: number): (id: string) => StoredOutcome | undefined {
  let byId: Map<string, ResultEnvelope> | undefined;
  return (id) => {
    if (!byId) {
      byId = new Map();
      for (const r of results) if (!byId.has(r.id)) byId.set(r.id, r);
    }
    const r = byId.get(id);
    return r && { failed: r.failed, payload: r.payload, at };
  };
}
