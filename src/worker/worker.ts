/**
 * The worker process: long-lived, runs one task at a time in the order the manager sent them, and answers
 * on the same pipe (fd 3, a socket pair the manager opened) with batches of results.
 * The function's own stdout/stderr go to the worker's stdout/stderr (the manager's log), never to the pipe.
 */
import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { encodeLengthPrefixed, FrameReader } from '../protocol/frames.js';
import { parseToWorker, type ResultEnvelope, type TaskEnvelope } from '../protocol/messages.js';
import { decodeTask, encodeOutcome, errorOutcome, type Outcome, type TaskBody } from '../protocol/payload.js';
import { SourceReceiver } from '../protocol/source-link.js';
import { heldSource } from '../protocol/task-source.js';
import { execute, errorInfo } from './execute.js';
import { WORKER_DEFAULTS } from '../config/defaults.js';

export interface WorkerOptions {
  /** fd of the manager's socket pair. @default WORKER_DEFAULTS.fd */
  fd?: number;
  /** Results larger than this fail with ResultTooLarge. @default WORKER_DEFAULTS.result_size_limit */
  resultSizeLimit?: number;
  /** How an MPI task is launched; `{ranks}` is replaced. @default WORKER_DEFAULTS.mpi_command */
  mpiLauncher?: string;
}

/** Run the worker loop; resolves with the exit code once the worker is done (the CLI entry point exits). */
export function runWorker(options: WorkerOptions = {}): Promise<number> {
  let done!: (code: number) => void;
  const finished = new Promise<number>((resolve) => (done = resolve));
  const pipe = new Socket({ fd: options.fd ?? WORKER_DEFAULTS.fd, readable: true, writable: true });
  const limit = options.resultSizeLimit ?? WORKER_DEFAULTS.result_size_limit;
  const mpiLauncher = options.mpiLauncher ?? WORKER_DEFAULTS.mpi_command;
  const reader = new FrameReader(parseToWorker);
  const queue: TaskEnvelope[] = [];
  let queueHead = 0;
  let running = false;
  let outbox: ResultEnvelope[] = [];
  let flushScheduled = false;
  // Sources the manager sent this process (protocol/source-link.ts); the pipe loses nothing, so none is missing.
  const sources = new SourceReceiver();

  const flush = (): void => {
    flushScheduled = false;
    if (outbox.length === 0) return;
    const results = outbox;
    outbox = [];
    pipe.write(encodeLengthPrefixed({ kind: 'results', results }));
  };
  const scheduleFlush = (): void => {
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  };

  const finish = (task: TaskEnvelope, outcome: Outcome, started: number): void => {
    let payload: Buffer;
    let failed = !outcome.ok;
    try {
      payload = encodeOutcome(outcome);
    } catch (err) {
      failed = true;
      payload = errorOutcome('SerializationError', `result of task ${task.id} cannot be serialized: ${errorInfo(err).message}`);
    }
    if (payload.length > limit) {
      failed = true;
      payload = errorOutcome('ResultTooLarge', `result of task ${task.id} is ${payload.length} bytes, over the limit of ${limit} bytes`);
    }
    outbox.push({ id: task.id, failed, payload, ms: performance.now() - started });
  };

  // Runs queued tasks in order; sync functions complete without awaiting, so a batch of no-ops costs no promises.
  const drain = async (): Promise<void> => {
    running = true;
    while (queueHead < queue.length) {
      const task = queue[queueHead];
      queue[queueHead++] = undefined as unknown as TaskEnvelope;
      const started = performance.now();
      let outcome: Outcome | Promise<Outcome>;
      try {
        outcome = execute(taskBody(task), mpiLauncher);
      } catch (err) {
        outcome = { ok: false, error: { type: 'InvalidTask', ...pickMessage(err) } };
      }
      if (outcome instanceof Promise) {
        scheduleFlush(); // results so far go out while this task waits
        outcome = await outcome;
      }
      finish(task, outcome, started);
    }
    queue.length = 0;
    queueHead = 0;
    running = false;
    scheduleFlush();
  };

  pipe.on('data', (chunk: Buffer) => {
    for (const message of reader.push(chunk)) {
      switch (message.kind) {
        case 'tasks': {
          const { ready, missing } = sources.expand(message);
          for (const task of ready) queue.push(task);
          for (const task of missing) {
            const error = { type: 'InvalidTask', message: `worker ${process.pid} lacks source ${task.h} of function ${task.fn} (task ${task.id})` };
            outbox.push({ id: task.id, failed: true, payload: encodeOutcome({ ok: false, error }) });
          }
          if (!running) void drain();
          else if (missing.length > 0) scheduleFlush();
          break;
        }
        case 'shutdown':
          flush();
          pipe.end(() => done(0));
          break;
        default: {
          const unhandled: never = message;
          throw new Error(`unhandled message ${JSON.stringify(unhandled)}`);
        }
      }
    }
  });
  // A scheduler's cancel (scancel, qdel) signals every process of the job. Only the manager decides about
  // workers: it says bye so the interchange retries their tasks, rather than us failing them with WorkerLost.
  process.on('SIGTERM', () => {});
  // The manager is gone: nobody will read our results, so stop.
  pipe.on('end', () => done(0));
  pipe.on('error', () => done(1));
  pipe.write(encodeLengthPrefixed({ kind: 'ready', pid: process.pid }));
  return finished;
}

/** What to run: the task's payload, or for a task naming its function (`h`) the source held for it. */
function taskBody(task: TaskEnvelope): TaskBody {
  const held = heldSource(task);
  if (held === undefined || task.fn === undefined) return decodeTask(task.payload);
  return { kind: 'js', functionId: task.fn, source: held.source, args: held.args };
}

function pickMessage(err: unknown): { message: string; stack?: string } {
  const info = errorInfo(err);
  return { message: info.message, stack: info.stack };
}
