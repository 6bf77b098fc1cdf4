/**
 * funcx-manager: one per node. Finds the interchange among the addresses it was given, registers, pulls tasks
 * up to its credit window, runs them in worker processes, returns results in batches, heartbeats, and exits
 * when the interchange has been silent past the threshold, so a lost endpoint never burns an allocation.
 *
 * State (MANAGER_TRANSITIONS): probing → registered → (draining →) stopping → stopped. stop() is idempotent (every
 * caller awaits one stop) and never exits the process: the CLI entry point exits with `stopped`'s code.
 */
import * as zmq from 'zeromq';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { encode } from '../protocol/codec.js';
import { PROTOCOL_VERSION, parseFromInterchange, type RegisterMessage, type ResultEnvelope, type ResultsMessage, type TasksMessage } from '../protocol/messages.js';
import { ManagerSources, withFullPayload } from './function-sources-cache.js';
import { SocketWriter } from '../protocol/socket-writer.js';
import type { ManagerKeyFile } from '../protocol/keys.js';
import { WorkerPool } from './worker-pool.js';
import { UserQueues } from './user-queues.js';
import { MpiGate, type MpiGateOptions } from './mpi/mpi-gate.js';
import { createLogger, rateLimited, type Logger } from '../logger.js';
import { WORKER_POOL_DEFAULTS } from '../config/defaults.js';
import { Lifecycle, Once, type Transitions } from '../lifecycle.js';
import { BusyPoll } from './busy-poll.js';

export type ManagerState = 'probing' | 'registered' | 'draining' | 'stopping' | 'stopped';

export const MANAGER_TRANSITIONS: Transitions<ManagerState> = {
  probing: ['registered', 'stopping'],
  registered: ['draining', 'stopping'],
  draining: ['stopping'],
  stopping: ['stopped'],
  stopped: [],
};

export interface ManagerOptions {
  /** Interchange addresses to try (host names or IPs); the first that answers wins. */
  addresses: string[];
  port: number;
  keys: ManagerKeyFile;
  /** @default "" */
  blockId?: string;
  workers: number;
  /** @default workers */
  cores?: number;
  /** @default 0 (unknown) */
  memoryMiB?: number;
  /** Tasks accepted beyond one per worker (engine.prefetch_capacity, resolved by the config layer). */
  prefetch: number;
  heartbeatPeriodMs: number;
  heartbeatThresholdMs: number;
  /** How long one round of probing waits for an answer (engine.address_probe_timeout, resolved by the config layer). */
  probeTimeoutMs: number;
  /** How long a user's worker pool may stay idle before its workers end (engine.user_pool_idle, resolved by the config layer). */
  poolIdleMs: number;
  /** Most worker processes, busy and warm idle (engine.max_worker_processes, resolved by the caller). @default workers */
  maxProcesses?: number;
  /** Epoch ms when the block ends, or null. */
  endsAt?: number | null;
  log?: Logger;
  /** Environment for workers. */
  workerEnv?: Record<string, string>;
  /** Microseconds a nice-19 thread keeps a CPU busy after a message in or out (engine.busy_poll_us; 0: off; busy-poll.ts). */
  busyPollUs: number;
  managerId?: string;
  /** Engine mode "mpi": this one manager holds the block's nodes and packs tasks onto them. */
  mpi?: Pick<MpiGateOptions, 'nodes' | 'launcher' | 'overrides' | 'probe' | 'probeEveryMs'>;
}

const MAX_WINDOW = 512;

export class Manager {
  private readonly life: Lifecycle<ManagerState>;
  private readonly stopping = new Once();
  readonly id: string;
  private socket?: zmq.Dealer;
  private writer?: SocketWriter;
  private pool?: WorkerPool;
  private readonly log: Logger;
  private readonly warnBadFrame: (m: string) => void;
  /** Tasks not yet given to a worker, one FIFO per user (user-queues.ts). */
  private readonly queues = new UserQueues();
  /** Function sources the interchange sent (function-sources-cache.ts). */
  private readonly sources = new ManagerSources();
  private outbox: ResultEnvelope[] = [];
  /** The spinner that keeps a CPU awake for a while after each message (engine.busy_poll_us). */
  readonly spin: BusyPoll;
  private flushScheduled = false;
  private lastHeard = Date.now();
  private heartbeatTimer?: NodeJS.Timeout;
  private avgTaskMs = 1000;
  private advertisedCapacity = 0;
  private stoppedResolve!: (code: number) => void;
  /** MPI mode: the node map changed since it was last sent. */
  private nodesDirty = false;
  /** Why this manager drains, for its bye. */
  private drainReason = 'drained';
  /** Engine mode "mpi" only: tasks wait here for nodes. */
  readonly gate?: MpiGate;
  /** Resolves with the exit code when the manager stops. */
  readonly stopped: Promise<number>;

  constructor(private readonly options: ManagerOptions) {
    this.id = options.managerId ?? randomUUID();
    this.log = options.log ?? createLogger(`manager ${this.id.slice(0, 8)}`);
    this.warnBadFrame = rateLimited((m) => this.log.warn(m));
    this.life = new Lifecycle<ManagerState>('manager', 'probing', MANAGER_TRANSITIONS, { log: this.log, level: 'info' });
    this.stopped = new Promise((resolve) => (this.stoppedResolve = resolve));
    this.spin = new BusyPoll(options.busyPollUs);
    if (options.mpi) {
      this.gate = new MpiGate({
        ...options.mpi,
        endsAt: options.endsAt ?? null,
        onReady: (tasks) => {
          for (const t of tasks) this.queues.push(t);
          this.fillWorkers();
          this.queueResults([]); // report the node map (status shows which task runs where)
        },
        onRefused: (results) => this.queueResults(results),
        onLate: (results) => this.queueResults(results),
        onNodesLost: (gone) => {
          const which = [...gone].map(([n, why]) => `${n} (${why})`).join(', ');
          this.log.warn(`MPI block lost node(s) ${which}: draining (tasks waiting here go back to the interchange)`);
          this.drain(`drained: node(s) ${which} vanished from the block`);
        },
      });
    }
  }

  get state(): ManagerState {
    return this.life.state;
  }

  private setState(next: ManagerState): void {
    this.life.to(next);
  }

  private get capacity(): number {
    return (this.options.workers * this.pool!.window) + this.options.prefetch;
  }

  async start(): Promise<void> {
    const { socket, address } = await this.probe();
    this.socket = socket;
    this.writer = new SocketWriter(socket, (err) => this.log.warn(`send failed: ${err.message}`));
    this.log.info(`registered with interchange at ${address}:${this.options.port}`);
    this.setState('registered');
    this.pool = new WorkerPool({
      workers: this.options.workers,
      log: this.log,
      env: this.options.workerEnv,
      onResults: (results) => this.queueResults(results),
      onIdle: () => this.fillWorkers(),
      onBroken: (reason) => void this.stop(`node unusable: ${reason}`, 4),
      poolIdleMs: this.options.poolIdleMs,
      maxProcesses: this.options.maxProcesses,
      sliceMs: WORKER_POOL_DEFAULTS.slice_ms,
    });
    this.pool.requeue = (tasks) => {
      this.queues.unshift(tasks);
    };
    this.advertisedCapacity = this.capacity;
    this.heartbeatTimer = setInterval(() => this.onHeartbeatTick(), this.options.heartbeatPeriodMs);
    this.heartbeatTimer.unref();
    // `on`, not `once`: schedulers and launchers often signal a job twice, and a second SIGTERM must not
    // kill us (Node's default) before the bye that lets the interchange retry our tasks at once.
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void this.stop(`received ${signal}`, 0));
    void this.receiveLoop();
  }

  /** Connect to every address at once, send the registration on each, keep the first that answers. */
  private async probe(): Promise<{ socket: zmq.Dealer; address: string }> {
    const probeTimeoutMs = this.options.probeTimeoutMs;
    const giveUpAt = Date.now() + Math.max(this.options.heartbeatThresholdMs, probeTimeoutMs);
    for (let round = 1; ; round++) {
      const attempts = this.options.addresses.map((address) => this.tryAddress(address, probeTimeoutMs));
      const winner = await firstFulfilled(attempts);
      // Close the losers (their registration never reached anyone, or reached the same interchange second).
      void Promise.allSettled(attempts).then((all) =>
        all.forEach((a) => {
          if (a.status === 'fulfilled' && a.value !== winner) a.value.socket.close();
        }),
      );
      if (winner) return winner;
      if (Date.now() >= giveUpAt) {
        throw new Error(
          `no interchange answered at ${this.options.addresses.join(', ')} port ${this.options.port} ` +
            `after ${round} rounds of ${probeTimeoutMs} ms (check endpoint_address and that the endpoint is running)`,
        );
      }
      this.log.warn(`probe round ${round}: no interchange answered yet; retrying`);
    }
  }

  private async tryAddress(address: string, timeoutMs: number): Promise<{ socket: zmq.Dealer; address: string }> {
    const socket = new zmq.Dealer({
      routingId: this.id,
      linger: 0,
      curveServerKey: this.options.keys.serverPublicKey,
      curvePublicKey: this.options.keys.publicKey,
      curveSecretKey: this.options.keys.secretKey,
      receiveTimeout: timeoutMs,
    });
    try {
      socket.connect(`tcp://${address.includes(':') ? `[${address}]` : address}:${this.options.port}`);
      const register: RegisterMessage = {
        kind: 'register',
        protocol: PROTOCOL_VERSION,
        managerId: this.id,
        hostname: hostname(),
        blockId: this.options.blockId ?? '',
        node: process.env.SLURMD_NODENAME || process.env.FUNCX_NODE_NAME || hostname(),
        workers: this.options.workers,
        cores: this.options.cores ?? this.options.workers,
        memoryMiB: this.options.memoryMiB ?? 0,
        capacity: this.options.workers + this.options.prefetch,
        endsAt: this.options.endsAt ?? null,
        pid: process.pid,
      };
      await socket.send(encode(register));
      const [frame] = await socket.receive();
      const reply = parseFromInterchange(frame);
      if (reply.kind === 'refused') throw new Error(`interchange at ${address} refused us: ${reply.reason}`);
      if (reply.kind !== 'registered') throw new Error(`interchange at ${address} answered ${reply.kind}`);
      socket.receiveTimeout = -1;
      return { socket, address };
    } catch (err) {
      socket.close();
      if ((err as Error).message.includes('refused us')) this.log.error((err as Error).message);
      throw err;
    }
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const [frame] of this.socket!) {
        this.spin.kick();
        this.lastHeard = Date.now();
        let message;
        try {
          message = parseFromInterchange(frame);
        } catch (err) {
          this.warnBadFrame(`dropped a bad frame from the interchange: ${(err as Error).message}`);
          continue;
        }
        switch (message.kind) {
          case 'tasks':
            this.onTasks(message);
            break;
          case 'heartbeat':
            break;
          case 'drain':
            this.drain();
            break;
          case 'shutdown':
            void this.stop('the interchange asked us to shut down', 0);
            break;
          case 'refused':
            void this.stop(`the interchange refused us: ${message.reason}`, 5);
            break;
          case 'registered':
            this.warnBadFrame('dropped a second "registered" from the interchange');
            break;
          default: {
            const unhandled: never = message;
            this.warnBadFrame(`dropped an unhandled message ${JSON.stringify((unhandled as { kind: unknown }).kind)}`);
          }
        }
      }
    } catch (err) {
      if (!this.life.is('stopping', 'stopped')) this.log.error(`receive failed: ${(err as Error).message}`);
    }
  }

  private onTasks(message: TasksMessage): void {
    const { ready: tasks, missing } = this.sources.expand(message);
    if (missing.length > 0) {
      this.log.warn(`lacked the source of ${missing.length} tasks; handing them back to the interchange`);
      this.writer!.send(encode({ kind: 'missing', ids: missing.map((t) => t.id) }));
    }
    // The MPI gate decodes payloads (it places tasks on nodes): it gets full ones.
    if (this.gate) return this.gate.add(tasks.map(withFullPayload));
    for (const t of tasks) this.queues.push(t);
    this.fillWorkers();
  }

  private fillWorkers(): void {
    if (this.queues.size > 0) this.pool?.fill(this.queues);
    if (this.state === 'draining') this.maybeFinishDrain();
  }

  private queueResults(results: ResultEnvelope[]): void {
    this.spin.kick();
    if (this.gate) {
      results = this.gate.done(results);
      this.nodesDirty = true;
    }
    for (const r of results) {
      if (r.ms !== undefined) this.avgTaskMs = this.avgTaskMs * 0.9 + r.ms * 0.1;
      this.outbox.push(r);
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  private flush = (): void => {
    this.flushScheduled = false;
    if (this.outbox.length === 0 && !this.nodesDirty) return;
    // Short tasks get a wider window per worker so results travel in batches; long ones keep it at 1.
    const pool = this.pool!;
    // MPI mode: one task per worker, or a task given nodes could wait behind another in a worker's window.
    pool.window = this.gate ? 1 : this.avgTaskMs < 0.5 ? MAX_WINDOW : this.avgTaskMs < 5 ? 8 : 1;
    const capacity = this.state === 'draining' ? 0 : this.capacity;
    const message: ResultsMessage = { kind: 'results', results: this.outbox };
    if (this.gate && this.nodesDirty) {
      message.nodes = this.gate.snapshot().nodes;
      this.nodesDirty = false;
    }
    if (capacity !== this.advertisedCapacity) {
      message.capacity = capacity;
      this.advertisedCapacity = capacity;
    }
    this.outbox = [];
    this.writer!.send(encode(message));
    this.spin.kick();
    if (this.state === 'draining') this.maybeFinishDrain();
  };

  private onHeartbeatTick(): void {
    const silentMs = Date.now() - this.lastHeard;
    if (silentMs > this.options.heartbeatThresholdMs) {
      void this.stop(`the interchange has been silent for ${Math.round(silentMs / 1000)} s (threshold ${this.options.heartbeatThresholdMs / 1000} s)`, 3);
      return;
    }
    // The pools ride on the heartbeat (status shows them): a few entries, once a period, never per task.
    this.writer?.send(encode({ kind: 'heartbeat', pools: this.pool?.poolViews() ?? [] }));
  }

  private drain(reason?: string): void {
    if (this.state !== 'registered') return;
    if (reason) this.drainReason = reason;
    this.setState('draining');
    this.writer!.send(encode({ kind: 'results', results: [], capacity: 0 }));
    this.maybeFinishDrain();
  }

  private maybeFinishDrain(): void {
    if (this.queues.size === 0 && this.pool!.inflightCount === 0 && this.outbox.length === 0 && !this.gate?.pending) {
      void this.stop(this.drainReason, 0);
    }
  }

  /** Stop: say bye (naming tasks still held, so they are retried at once), stop workers, close. */
  stop(reason: string, exitCode: number): Promise<void> {
    return this.stopping.run(() => this.stopSteps(reason, exitCode));
  }

  private async stopSteps(reason: string, exitCode: number): Promise<void> {
    this.setState('stopping');
    this.log.info(`stopping: ${reason}`);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.gate?.stop();
    this.pool?.stop();
    if (this.writer && this.outbox.length > 0) this.flush();
    this.writer?.send(encode({ kind: 'bye', reason }));
    await this.writer?.flushed(1000);
    this.writer?.close();
    // Give ZeroMQ a moment to put the bye on the wire before the socket goes.
    await new Promise((r) => setTimeout(r, 50));
    this.socket?.close();
    this.spin.stop();
    this.setState('stopped');
    this.stoppedResolve(exitCode);
  }
}

/** The first promise to fulfil, or undefined when all reject. */
async function firstFulfilled<T>(promises: Promise<T>[]): Promise<T | undefined> {
  return new Promise((resolve) => {
    let pending = promises.length;
    if (pending === 0) resolve(undefined);
    for (const p of promises) {
      p.then(resolve, () => {
        if (--pending === 0) resolve(undefined);
      });
    }
  });
}
