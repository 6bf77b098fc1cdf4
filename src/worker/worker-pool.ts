/**
 * The manager's worker processes: spawns them, hands each a window of tasks in order over its socket pair,
 * collects results, and turns a worker's death into an error result for the task it was running (the rest of
 * its window goes back to the queue). One interval checks task walltimes: no timer per task.
 *
 * Every worker belongs to one user (its pool): the endpoint owner's ("") or a user who submits to a shared
 * endpoint. It runs only that user's tasks. The block's worker count is shared among the pools: a user with
 * queued tasks and no worker takes an idle worker of another pool (that process is stopped and a fresh one
 * started for the user); on the walltime tick, workers idle a while go to users still waiting, and a user's
 * workers idle past `poolIdleMs` are given back to the owner's pool (the user's processes end).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';
import { encodeLengthPrefixed, FrameReader } from '../protocol/frames.js';
import { parseFromWorker } from '../protocol/messages.js';
import type { ResultEnvelope, TaskEnvelope } from '../protocol/messages.js';
import { errorOutcome } from '../protocol/payload.js';
import type { Logger } from '../logger.js';
import { OWNER, type UserQueues } from './user-queues.js';

const WORKER_SCRIPT = fileURLToPath(new URL('../cli/worker.js', import.meta.url));

/** `FUNCX_CPU_PROFILE_DIR=/dir` writes a CPU profile of every worker there (see README: profiling). */
export function profilingArgs(): string[] {
  const dir = process.env.FUNCX_CPU_PROFILE_DIR;
  return dir ? ['--cpu-prof', '--cpu-prof-dir', dir] : [];
}

/** The least time a worker serves the user it was started for before another user may take it (ms). */
const TENURE_MS = 1000;

interface Slot {
  index: number;
  /** The user whose tasks this worker runs (OWNER: the endpoint's owner). */
  user: string;
  /** When its window last emptied (ms). */
  idleSince: number;
  /** When this worker was handed to its user (0: started with the pool): not taken from it before TENURE_MS. */
  bornAt: number;
  /** Replaced by a worker for another user: its exit is expected. */
  retired?: boolean;
  /** Promised to this user (who has no worker): takes no more tasks, and is replaced once its window empties. */
  handTo?: string;
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
  /** A user's workers idle this long go back to the owner's pool. @default 60000 */
  poolIdleMs?: number;
  /** A worker idle this long may be handed to another user with queued tasks. @default 1000 */
  lendIdleMs?: number;
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private stopping = false;
  private startFailures = 0;
  private walltimeTimer: NodeJS.Timeout;
  /** Tasks each worker may hold at once; raised for short tasks so results come back in batches. */
  window = 1;

  constructor(private readonly options: WorkerPoolOptions) {
    for (let i = 0; i < options.workers; i++) this.setSlot(i, OWNER);
    this.walltimeTimer = setInterval(() => this.onTick(), 500);
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

  /** The pools (user → live workers), for status and tests. */
  pools(): Map<string, number> {
    const out = new Map<string, number>();
    for (const s of this.slots) out.set(s.user, (out.get(s.user) ?? 0) + 1);
    return out;
  }

  /** Give queued tasks to workers of their user with room in their window. */
  fill(queues: UserQueues): void {
    if (queues.size === 0) return;
    this.queues = queues;
    // The common case (only the owner's tasks, only the owner's workers) skips the pool bookkeeping.
    if (this.otherSlots > 0 || queues.pending(OWNER) !== queues.size) this.givePools(queues, 0);
    for (const slot of this.slots) {
      if (!slot.ready) continue;
      if (slot.handTo !== undefined) {
        if (queues.pending(slot.handTo) > 0) continue; // draining for its next user
        slot.handTo = undefined;
      }
      const room = this.window - slot.inflight.length;
      if (room <= 0) continue;
      const tasks = queues.take(slot.user, room);
      if (tasks.length === 0) {
        if (queues.size === 0) return;
        continue;
      }
      if (slot.inflight.length === 0) slot.headStartedAt = Date.now();
      for (const t of tasks) slot.inflight.push(t);
      slot.pipe.write(encodeLengthPrefixed({ kind: 'tasks', tasks }));
    }
  }

  private queues?: UserQueues;

  /** Workers that belong to users other than the owner. */
  private otherSlots = 0;

  /** Put a new worker in place `index` (the only way slots change). */
  private setSlot(index: number, user: string): void {
    const old = this.slots[index];
    if (old && old.user !== OWNER) this.otherSlots--;
    if (user !== OWNER) this.otherSlots++;
    this.slots[index] = this.spawnSlot(index, user);
  }

  /**
   * A user with queued tasks and no worker gets one: an idle worker (window empty) of another pool at once,
   * else the least busy worker of the largest pool once its window empties. With `lendAfterMs`, users with
   * workers also get workers idle that long whose own user has nothing queued.
   */
  private givePools(queues: UserQueues, lendAfterMs: number): void {
    const now = Date.now();
    for (const user of [...queues.waiting()]) {
      const pools = this.pools();
      let mine = pools.get(user) ?? 0;
      if (mine === 0) {
        this.giveFirstWorker(user, queues, pools);
        continue;
      }
      if (lendAfterMs === 0) continue;
      for (const slot of this.slots) {
        if (slot.user === user || !slot.ready || slot.inflight.length > 0 || slot.handTo !== undefined) continue;
        if (queues.pending(slot.user) > 0 || now - slot.idleSince < lendAfterMs) continue;
        if (queues.pending(user) <= this.window * mine) break;
        this.reassign(slot, user);
        mine++;
      }
    }
  }

  private giveFirstWorker(user: string, queues: UserQueues, pools: Map<string, number>): void {
    const reserved = this.slots.find((s) => s.handTo === user);
    if (reserved) {
      if (reserved.ready && reserved.inflight.length === 0) this.reassign(reserved, user);
      return;
    }
    // A worker serves its user at least TENURE_MS: with more users than workers, users take turns instead of
    // passing workers round on every fill (each pass restarts a process: three users on two workers stalled).
    const now = Date.now();
    const candidates = this.slots.filter((s) => s.ready && s.handTo === undefined && (now - s.bornAt >= TENURE_MS || queues.pending(s.user) === 0));
    // Prefer a worker whose user has nothing queued or has other workers.
    const spare = (s: Slot) => Number(queues.pending(s.user) === 0 || (pools.get(s.user) ?? 0) > 1);
    const idle = candidates.filter((s) => s.inflight.length === 0).sort((a, b) => spare(b) - spare(a));
    if (idle.length > 0) {
      this.reassign(idle[0], user);
      return;
    }
    const busy = candidates.sort((a, b) => (pools.get(b.user) ?? 0) - (pools.get(a.user) ?? 0) || a.inflight.length - b.inflight.length);
    if (busy.length > 0) busy[0].handTo = user;
  }

  /** Stop an idle worker and start a fresh one in its place for `user`. */
  private reassign(slot: Slot, user: string): void {
    slot.retired = true;
    slot.pipe.end(encodeLengthPrefixed({ kind: 'shutdown' }));
    setTimeout(() => slot.child.kill('SIGKILL'), 1000).unref();
    this.setSlot(slot.index, user);
    this.slots[slot.index].bornAt = Date.now();
  }

  private spawnSlot(index: number, user: string): Slot {
    const child = spawn(process.execPath, [...profilingArgs(), WORKER_SCRIPT], {
      stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
      env: { ...process.env, ...this.options.env, FUNCX_WORKER_INDEX: String(index) },
    });
    const pipe = child.stdio[3] as Socket;
    const slot: Slot = { index, user, idleSince: Date.now(), bornAt: 0, child, pipe, ready: false, inflight: [], headStartedAt: 0 };
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
    if (slot.inflight.length === 0) slot.idleSince = slot.headStartedAt;
    this.options.onResults(results);
    this.options.onIdle();
  }

  private onExit(slot: Slot, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopping || slot.retired) return;
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
    this.setSlot(slot.index, slot.user);
  }

  /** Tasks a dead worker had not started go back to the front of the manager's queue. */
  requeue: (tasks: TaskEnvelope[]) => void = () => {};

  private onTick(): void {
    this.checkWalltimes();
    if (this.stopping) return;
    const queues = this.queues;
    if (queues && queues.size > 0) {
      this.givePools(queues, this.options.lendIdleMs ?? 1000);
      this.fill(queues);
    }
    // Reap: a user's workers idle past poolIdleMs end; the owner's pool gets the places back.
    const now = Date.now();
    const idleMs = this.options.poolIdleMs ?? 60_000;
    for (const slot of this.slots) {
      if (slot.user !== OWNER && slot.ready && slot.inflight.length === 0 && now - slot.idleSince >= idleMs && !(queues && queues.pending(slot.user) > 0)) {
        this.reassign(slot, OWNER);
      }
    }
  }

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
