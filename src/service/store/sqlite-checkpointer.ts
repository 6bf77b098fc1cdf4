/**
 * WAL checkpoints off the service's event loop.
 *
 * In WAL mode SQLite copies the log back into the database file (a checkpoint, with an fsync) inside whichever
 * commit crosses `wal_autocheckpoint` pages. better-sqlite3 is synchronous, so that commit held the service's
 * one event loop: one user storing 1 MiB functions or 10,000-task batches made every other user's requests wait
 * (the abuse run: 460 function inserts cost 10 ms each, 10,000-task commits 200 ms). The service's connection
 * turns automatic checkpoints off, and this worker thread, with a connection of its own, runs PASSIVE
 * checkpoints (they never block the writer or readers) every `periodMs` while the service runs.
 *
 * State: running → closed. `close()` is idempotent; the service's connection closing afterwards checkpoints
 * what is left and removes the log, as SQLite does for the last connection.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

interface CheckpointerData {
  role: 'sqlite-checkpointer';
  path: string;
  periodMs: number;
}

/** How often the worker checkpoints: a 100 ms burst of writes stays in the log, not in commits. */
export const CHECKPOINT_PERIOD_MS = 100;

export class SqliteCheckpointer {
  private readonly worker: Worker;
  private closing: Promise<void> | undefined;

  constructor(path: string, periodMs = CHECKPOINT_PERIOD_MS) {
    this.worker = new Worker(new URL(import.meta.url), { workerData: { role: 'sqlite-checkpointer', path, periodMs } satisfies CheckpointerData });
    this.worker.unref();
    // A failed checkpoint is retried on the next period by the worker; the thread itself ending is not fatal
    // for the service: the log then grows until the service's connection closes and checkpoints it.
    this.worker.on('error', () => undefined);
    this.exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
  }

  private readonly exited: Promise<void>;

  close(): Promise<void> {
    this.closing ??= (() => {
      this.worker.ref(); // keep the process alive until the thread has closed its connection
      this.worker.postMessage('close');
      return this.exited;
    })();
    return this.closing;
  }
}

if (!isMainThread && (workerData as CheckpointerData | undefined)?.role === 'sqlite-checkpointer') {
  const { path, periodMs } = workerData as CheckpointerData;
  const db = new Database(path);
  db.pragma('busy_timeout = 5000');
  const timer = setInterval(() => {
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      /* busy or gone: the next period tries again */
    }
  }, periodMs);
  parentPort!.once('message', () => {
    clearInterval(timer);
    db.close();
    parentPort!.close();
  });
}
