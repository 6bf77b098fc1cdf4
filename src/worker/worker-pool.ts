/**
 * The manager's worker processes: spawns them, hands each a window of tasks in order over its socket pair,
 * collects results, and turns a worker's death into an error result for the task it was running (the rest of
 * its window goes back to the queue). One interval checks task walltimes and reaps idle pools: no timer per task.
 *
 * Every process belongs to one user for its whole life (its pool): the endpoint owner's ("") or a user who
 * submits to a shared endpoint, and runs only that user's tasks. Slots count CPU, processes are warm state:
 * at most `workers` processes have tasks at once (each holds a slot), but up to `maxProcesses` stay alive, so
 * a user's next turn reuses its idle process instead of restarting one. Who gets a free slot, who yields one,
 * and which idle process is evicted at the cap is pool-scheduler.ts's decision; a user's processes idle past
 * `poolIdleMs` end, and the owner's pool is refilled to `workers` warm processes when there is room.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';
import { encodeLengthPrefixed, FrameReader } from '../protocol/frames.js';
import { parseFromWorker } from '../protocol/messages.js';
import type { PoolView, ResultEnvelope, TaskEnvelope } from '../protocol/messages.js';
import { errorOutcome } from '../protocol/payload.js';
import { workerTasksMessages } from './function-sources-cache.js';
import type { Logger } from '../logger.js';
import { OWNER, type UserQueues } from './user-queues.js';
import { holdsSlot, PoolScheduler, type ProcView } from './pool-scheduler.js';
import { WORKER_POOL_DEFAULTS } from '../config/defaults.js';

const WORKER_SCRIPT = fileURLToPath(new URL('../cli/worker.js', import.meta.url));

/** `FUNCX_CPU_PROFILE_DIR=/dir` writes a CPU profile of every worker there (see README: profiling). */
export function profilingArgs(): string[] {
  const dir = process.env.FUNCX_CPU_PROFILE_DIR;
  return dir ? ['--cpu-prof', '--cpu-prof-dir', dir] : [];
}

/**
 * `--max-semi-space-size=MB` for a long-lived process this one starts (the service, the endpoint daemon),
 * unless NODE_OPTIONS or this process's own flags already set one.
 */
export function semiSpaceArgs(mb: number): string[] {
  const given = `${process.env.NODE_OPTIONS ?? ''} ${process.execArgv.join(' ')}`;
  return /--max-semi-space-size/.test(given) ? [] : [`--max-semi-space-size=${mb}`];
}

/** What the pool needs of a worker process: a real child (spawnWorkerProcess) or a fake in unit tests. */
export interface WorkerProcess {
  readonly pid?: number;
  /** The socket pair to the worker: length-prefixed frames both ways. */
  readonly pipe: Pick<Socket, 'write' | 'end' | 'on'>;
  kill(signal: NodeJS.Signals): unknown;
  onExit(handler: (code: number | null, signal: NodeJS.Signals | null) => void): void;
}

/** Start funcx-worker with the socket pair on fd 3. */
export function spawnWorkerProcess(index: number, env?: Record<string, string>): WorkerProcess {
  const child = spawn(process.execPath, [...profilingArgs(), WORKER_SCRIPT], {
    stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
    env: { ...process.env, ...env, FUNCX_WORKER_INDEX: String(index) },
  });
  return {
    pid: child.pid,
    pipe: child.stdio[3] as Socket,
    kill: (signal) => child.kill(signal),
    onExit: (handler) => child.on('exit', handler),
  };
}

/**
 * One worker process. State: starting (spawned, not ready) → idle (ready, window empty: warm, holds no slot)
 * ⇄ busy (tasks in flight: holds a slot; `yielding`: takes no more, its slot goes to another user once its
 * window empties) → retired (evicted or reaped; its exit is expected) or dead (exit; replaced for its user).
 */
interface Proc extends ProcView {
  index: number;
  readonly user: string;
  process: WorkerProcess;
  inflight: TaskEnvelope[];
  headStartedAt: number;
  retired: boolean;
  /** Set when we killed it ourselves; says how to report its head task. */
  killedFor?: { type: string; message: string };
}

export interface WorkerPoolOptions {
  /** Slots: task windows that run at once (the manager's workers). */
  workers: number;
  /** Most processes, busy and warm idle (engine.max_worker_processes, resolved by the caller). @default workers */
  maxProcesses?: number;
  /** How long a user keeps a slot another user with fewer slots waits for (ms). @default WORKER_POOL_DEFAULTS.slice_ms */
  sliceMs?: number;
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
  /** A user's processes idle this long end. @default 60000 */
  poolIdleMs?: number;
  /** Starts a worker process (tests pass fakes). @default spawnWorkerProcess */
  spawnWorker?: (index: number) => WorkerProcess;
  /** The clock (tests pass a fake one). @default Date.now */
  now?: () => number;
}

export class WorkerPool {
  private procs: Proc[] = [];
  private readonly scheduler: PoolScheduler;
  private readonly slotCount: number;
  private readonly maxProcesses: number;
  private readonly spawnWorker: (index: number) => WorkerProcess;
  private readonly now: () => number;
  private stopping = false;
  private startFailures = 0;
  private walltimeTimer: NodeJS.Timeout;
  private queues?: UserQueues;
  /** Live processes that belong to users other than the owner (0: the owner-only fast path). */
  private otherProcs = 0;
  /** Tasks each worker may hold at once; raised for short tasks so results come back in batches. */
  window = 1;

  constructor(private readonly options: WorkerPoolOptions) {
    this.slotCount = options.workers;
    this.maxProcesses = Math.max(options.workers, options.maxProcesses ?? options.workers);
    this.scheduler = new PoolScheduler({ slots: this.slotCount, maxProcesses: this.maxProcesses, sliceMs: options.sliceMs ?? WORKER_POOL_DEFAULTS.slice_ms });
    this.spawnWorker = options.spawnWorker ?? ((index) => spawnWorkerProcess(index, options.env));
    this.now = options.now ?? Date.now;
    for (let i = 0; i < options.workers; i++) this.startProc(OWNER, false);
    this.walltimeTimer = setInterval(() => this.tick(), 500);
    this.walltimeTimer.unref();
  }

  /** Slots: task windows that run at once. */
  get size(): number {
    return this.slotCount;
  }

  /** Tasks handed to workers and not answered. */
  get inflightCount(): number {
    let n = 0;
    for (const p of this.procs) n += p.inflight.length;
    return n;
  }

  /** The pools (user → live processes), for tests. */
  pools(): Map<string, number> {
    const out = new Map<string, number>();
    for (const p of this.procs) out.set(p.user, (out.get(p.user) ?? 0) + 1);
    return out;
  }

  /** Per user: slots held (running), warm processes holding none (idle), tasks queued here; for status. */
  poolViews(): PoolView[] {
    const by = new Map<string, PoolView>();
    const view = (user: string) => {
      let v = by.get(user);
      if (!v) by.set(user, (v = { user, running: 0, idle: 0, queued: this.queues?.pending(user) ?? 0 }));
      return v;
    };
    for (const p of this.procs) {
      if (holdsSlot(p)) view(p.user).running++;
      else view(p.user).idle++;
    }
    if (this.queues) for (const user of this.queues.waiting()) view(user);
    return [...by.values()];
  }

  /** Give queued tasks to processes of their user, within the slots. */
  fill(queues: UserQueues): void {
    if (queues.size === 0) return;
    this.queues = queues;
    // The common case (only the owner's tasks and processes, no more processes than slots): top every one up.
    if (this.otherProcs === 0 && this.procs.length <= this.slotCount && queues.pending(OWNER) === queues.size) {
      for (const p of this.procs) {
        if (p.ready && !p.yielding && this.feed(p, queues) && queues.size === 0) return;
      }
      if (queues.size === 0 || this.procs.length >= this.slotCount) return;
    } else {
      // Busy processes keep their slot and take more of their user's tasks, unless they are yielding it.
      for (const p of this.procs) {
        if (p.ready && !p.yielding && p.inflight.length > 0 && this.feed(p, queues) && queues.size === 0) return;
      }
    }
    const plan = this.scheduler.plan(this.now(), this.procs, queues, this.window);
    for (const p of plan.evict) this.retire(p);
    for (const s of plan.start) {
      if (s.proc) this.feed(s.proc, queues);
      else this.startProc(s.user, true);
    }
  }

  /** Send `p` up to a window of its own user's tasks; true if it took any. */
  private feed(p: Proc, queues: UserQueues): boolean {
    const room = this.window - p.inflight.length;
    if (room <= 0) return false;
    const tasks = queues.take(p.user, room);
    if (tasks.length === 0) return false;
    if (p.inflight.length === 0) p.headStartedAt = p.busySince = this.now();
    for (const t of tasks) p.inflight.push(t);
    for (const m of workerTasksMessages(p.process, tasks)) p.process.pipe.write(encodeLengthPrefixed(m));
    return true;
  }

  /** Start a process for `user`: `wanted` for its queued tasks (it holds a slot while it starts), else a warm spare. */
  private startProc(user: string, wanted: boolean): Proc {
    const used = new Set(this.procs.map((p) => p.index));
    let index = 0;
    while (used.has(index)) index++;
    const now = this.now();
    const proc: Proc = {
      index, user, wanted, ready: false, yielding: false, retired: false, busySince: now, idleSince: now,
      process: this.spawnWorker(index), inflight: [], headStartedAt: 0,
    };
    this.procs.push(proc);
    if (user !== OWNER) this.otherProcs++;
    const reader = new FrameReader(parseFromWorker);
    const { pipe } = proc.process;
    pipe.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = reader.push(chunk);
      } catch (err) {
        this.options.log.error(`worker ${index} (pid ${proc.process.pid}) sent a bad frame: ${(err as Error).message}; killing it`);
        proc.process.kill('SIGKILL');
        return;
      }
      for (const message of frames) {
        switch (message.kind) {
          case 'ready':
            proc.ready = true;
            proc.idleSince = this.now();
            // Started for its user's queued tasks: it takes the slot it held while starting, before any other
            // user can be given that slot by the next decision.
            if (proc.wanted && this.queues) this.feed(proc, this.queues);
            proc.wanted = false;
            this.startFailures = 0;
            this.options.onIdle();
            break;
          case 'results':
            this.onWorkerResults(proc, message.results);
            break;
          default: {
            const unhandled: never = message;
            throw new Error(`unhandled message ${JSON.stringify(unhandled)}`);
          }
        }
      }
    });
    pipe.on('error', () => {}); // the exit handler reports the loss
    proc.process.onExit((code, signal) => this.onExit(proc, code, signal));
    return proc;
  }

  /** Take a process out of the pool (evicted, reaped): ask it to stop, kill it if it is still there a moment later. */
  private retire(p: Proc): void {
    p.retired = true;
    this.remove(p);
    p.process.pipe.end(encodeLengthPrefixed({ kind: 'shutdown' }));
    setTimeout(() => p.process.kill('SIGKILL'), 1000).unref();
  }

  private remove(p: Proc): void {
    const i = this.procs.indexOf(p);
    if (i < 0) return;
    this.procs.splice(i, 1);
    if (p.user !== OWNER) this.otherProcs--;
  }

  private onWorkerResults(p: Proc, results: ResultEnvelope[]): void {
    // Workers answer in order, so each result matches the head of the window.
    for (const r of results) {
      const head = p.inflight[0];
      if (head !== undefined && head.id === r.id) p.inflight.shift();
      else {
        const i = p.inflight.findIndex((t) => t.id === r.id);
        if (i < 0) continue; // not ours any more (already reported)
        p.inflight.splice(i, 1);
      }
    }
    p.headStartedAt = this.now();
    if (p.inflight.length === 0) {
      p.idleSince = p.headStartedAt;
      p.yielding = false; // its slot is free: the next fill gives it to whoever the scheduler says
    }
    this.options.onResults(results);
    this.options.onIdle();
  }

  private onExit(p: Proc, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopping || p.retired) return;
    this.remove(p);
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    const lost = p.inflight.splice(0);
    if (!p.ready) this.startFailures++;
    if (lost.length > 0) {
      const head = lost.shift()!;
      const why = p.killedFor ?? {
        type: 'WorkerLost',
        message: `worker ${p.index} (pid ${p.process.pid}) died with ${how} while running task ${head.id}`,
      };
      this.options.log.warn(`${why.type}: ${why.message}`);
      this.options.onResults([{ id: head.id, failed: true, payload: errorOutcome(why.type, why.message) }]);
      if (lost.length > 0) this.requeue(lost);
    } else {
      this.options.log.warn(`worker ${p.index} (pid ${p.process.pid}) exited with ${how}; replacing it`);
    }
    if (this.startFailures >= (this.options.maxStartFailures ?? 5)) {
      this.options.onBroken(`workers die before starting (${this.startFailures} times in a row, last with ${how})`);
      return;
    }
    // Its user keeps its warm process; a fresh one, since the dead one's state is gone.
    this.startProc(p.user, false);
    this.options.onIdle();
  }

  /** Tasks a dead worker had not started go back to the front of the manager's queue. */
  requeue: (tasks: TaskEnvelope[]) => void = () => {};

  /** Every 500 ms: walltimes, turns (a slice may have ended with no result to notice it), reaping, refill. */
  tick(): void {
    this.checkWalltimes();
    if (this.stopping) return;
    const queues = this.queues;
    if (queues && queues.size > 0) this.fill(queues);
    // Reap: a user's processes idle past poolIdleMs end.
    const now = this.now();
    const idleMs = this.options.poolIdleMs ?? 60_000;
    for (const p of [...this.procs]) {
      if (p.user !== OWNER && p.ready && p.inflight.length === 0 && now - p.idleSince >= idleMs && !(queues && queues.pending(p.user) > 0)) {
        this.retire(p);
      }
    }
    // The owner's pool gets its places back: warm processes up to the slots, within the cap.
    let owner = 0;
    for (const p of this.procs) if (p.user === OWNER) owner++;
    while (owner < this.slotCount && this.procs.length < this.maxProcesses) {
      this.startProc(OWNER, false);
      owner++;
    }
    if (queues) this.scheduler.prune(this.procs, queues);
  }

  private checkWalltimes(): void {
    const now = this.now();
    for (const p of this.procs) {
      const head = p.inflight[0];
      if (head?.wt && now - p.headStartedAt > head.wt && !p.killedFor) {
        p.killedFor = { type: 'WalltimeExceeded', message: `task ${head.id} ran past its walltime of ${head.wt} ms; its worker was killed` };
        p.process.kill('SIGKILL');
      }
    }
  }

  /** Stop every worker: ask politely, kill what is still there a moment later. */
  stop(): void {
    this.stopping = true;
    clearInterval(this.walltimeTimer);
    for (const p of this.procs) {
      if (p.inflight.length > 0) {
        p.process.kill('SIGKILL'); // busy: its task is the interchange's to retry
        continue;
      }
      p.process.pipe.end(encodeLengthPrefixed({ kind: 'shutdown' }));
      setTimeout(() => p.process.kill('SIGKILL'), 1000).unref();
    }
  }

  /** Tasks still held by workers (for a bye on shutdown). */
  takeInflight(): TaskEnvelope[] {
    return this.procs.flatMap((s) => s.inflight.splice(0));
  }
}
