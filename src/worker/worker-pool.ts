/**
 * The manager's worker processes: spawns them, hands each a window of tasks in order over its socket pair,
 * collects results, and turns a worker's death into an error result for the task it was running (the rest of
 * its window goes back to the queue). One interval checks task walltimes: no timer per task.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';
import { encodeLengthPrefixed, FrameReader } from '../protocol/frames.js';
import { parseFromWorker } from '../protocol/messages.js';
import type { ResultEnvelope, TaskEnvelope } from '../protocol/messages.js';
import { errorOutcome } from '../protocol/payload.js';
import type { Logger } from '../logger.js';

const WORKER_SCRIPT = fileURLToPath(new URL('../cli/worker.js', import.meta.url));

/** `FUNCX_CPU_PROFILE_DIR=/dir` writes a CPU profile of every worker there (see README: profiling). */
export function profilingArgs(): string[] {
  const dir = process.env.FUNCX_CPU_PROFILE_DIR;
  return dir ? ['--cpu-prof', '--cpu-prof-dir', dir] : [];
}

interface Slot {
  index: number;
  child: ChildProcess;
  pipe: Socket;
  ready: boolean;
  /** Tasks sent to this worker and not yet answered, in the order it runs them. */
  inflight: TaskEnvelope[];
  headStartedAt: number;
  /** Set when we killed it ourselves; says how to report its head task. */
  killedFor?: { type: string; message: string };
}

export interface WorkerPoolOptions {
  workers: number;
  log: Logger;
  /** Extra environment for worker processes. */
  env?: Record<string, string>;
  /** Called with each batch of finished tasks (including failures made here). */
  onResults: (results: ResultEnvelope[]) => void;
  /** Called when a worker can take more work. */
  onIdle: () => void;
  /** A worker that dies this many times in a row before saying ready means the node is broken. */
  maxStartFailures?: number;
  onBroken: (reason: string) => void;
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private stopping = false;
  private startFailures = 0;
  private walltimeTimer: NodeJS.Timeout;
  /** Tasks each worker may hold at once; raised for short tasks so results come back in batches. */
  window = 1;

  constructor(private readonly options: WorkerPoolOptions) {
    for (let i = 0; i < options.workers; i++) this.slots.push(this.spawnSlot(i));
    this.walltimeTimer = setInterval(() => this.checkWalltimes(), 500);
    this.walltimeTimer.unref();
  }

  get size(): number {
    return this.slots.length;
  }

  /** Tasks handed to workers and not answered. */
  get inflightCount(): number {
    let n = 0;
    for (const s of this.slots) n += s.inflight.length;
    return n;
  }

  /** Give tasks from `take(n)` to workers with room in their window. */
  fill(take: (max: number) => TaskEnvelope[]): void {
    for (const slot of this.slots) {
      if (!slot.ready) continue;
      const room = this.window - slot.inflight.length;
      if (room <= 0) continue;
      const tasks = take(room);
      if (tasks.length === 0) return;
      if (slot.inflight.length === 0) slot.headStartedAt = Date.now();
      for (const t of tasks) slot.inflight.push(t);
      slot.pipe.write(encodeLengthPrefixed({ kind: 'tasks', tasks }));
    }
  }

  private spawnSlot(index: number): Slot {
    const child = spawn(process.execPath, [...profilingArgs(), WORKER_SCRIPT], {
      stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
      env: { ...process.env, ...this.options.env, FUNCX_WORKER_INDEX: String(index) },
    });
    const pipe = child.stdio[3] as Socket;
    const slot: Slot = { index, child, pipe, ready: false, inflight: [], headStartedAt: 0 };
    const reader = new FrameReader(parseFromWorker);
    pipe.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = reader.push(chunk);
      } catch (err) {
        this.options.log.error(`worker ${index} (pid ${child.pid}) sent a bad frame: ${(err as Error).message}; killing it`);
        child.kill('SIGKILL');
        return;
      }
      for (const message of frames) {
        switch (message.kind) {
          case 'ready':
            slot.ready = true;
            this.startFailures = 0;
            this.options.onIdle();
            break;
          case 'results':
            this.onWorkerResults(slot, message.results);
            break;
          default: {
            const unhandled: never = message;
            throw new Error(`unhandled message ${JSON.stringify(unhandled)}`);
          }
        }
      }
    });
    pipe.on('error', () => {}); // the exit handler reports the loss
    child.on('exit', (code, signal) => this.onExit(slot, code, signal));
    return slot;
  }

  private onWorkerResults(slot: Slot, results: ResultEnvelope[]): void {
    // Workers answer in order, so each result matches the head of the window.
    for (const r of results) {
      const head = slot.inflight[0];
      if (head !== undefined && head.id === r.id) slot.inflight.shift();
      else {
        const i = slot.inflight.findIndex((t) => t.id === r.id);
        if (i < 0) continue; // not ours any more (already reported)
        slot.inflight.splice(i, 1);
      }
    }
    slot.headStartedAt = Date.now();
    this.options.onResults(results);
    this.options.onIdle();
  }

  private onExit(slot: Slot, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopping) return;
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    const lost = slot.inflight.splice(0);
    if (!slot.ready) this.startFailures++;
    if (lost.length > 0) {
      const head = lost.shift()!;
      const why = slot.killedFor ?? {
        type: 'WorkerLost',
        message: `worker ${slot.index} (pid ${slot.child.pid}) died with ${how} while running task ${head.id}`,
      };
      this.options.log.warn(`${why.type}: ${why.message}`);
      this.options.onResults([{ id: head.id, failed: true, payload: errorOutcome(why.type, why.message) }]);
      if (lost.length > 0) this.requeue(lost);
    } else {
      this.options.log.warn(`worker ${slot.index} (pid ${slot.child.pid}) exited with ${how}; replacing it`);
    }
    if (this.startFailures >= (this.options.maxStartFailures ?? 5)) {
      this.options.onBroken(`workers die before starting (${this.startFailures} times in a row, last with ${how})`);
      return;
    }
    this.slots[slot.index] = this.spawnSlot(slot.index);
  }

  /** Tasks a dead worker had not started go back to the front of the manager's queue. */
  requeue: (tasks: TaskEnvelope[]) => void = () => {};

  private checkWalltimes(): void {
    const now = Date.now();
    for (const slot of this.slots) {
      const head = slot.inflight[0];
      if (head?.wt && now - slot.headStartedAt > head.wt && !slot.killedFor) {
        slot.killedFor = { type: 'WalltimeExceeded', message: `task ${head.id} ran past its walltime of ${head.wt} ms; its worker was killed` };
        slot.child.kill('SIGKILL');
      }
    }
  }

  /** Stop every worker: ask politely, kill what is still there a moment later. */
  stop(): void {
    this.stopping = true;
    clearInterval(this.walltimeTimer);
    for (const slot of this.slots) {
      if (slot.inflight.length > 0) {
        slot.child.kill('SIGKILL'); // busy: its task is the interchange's to retry
        continue;
      }
      slot.pipe.end(encodeLengthPrefixed({ kind: 'shutdown' }));
      setTimeout(() => slot.child.kill('SIGKILL'), 1000).unref();
    }
  }

  /** Tasks still held by workers (for a bye on shutdown). */
  takeInflight(): TaskEnvelope[] {
    return this.slots.flatMap((s) => s.inflight.splice(0));
  }
}
