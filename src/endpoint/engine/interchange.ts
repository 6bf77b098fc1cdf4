/**
 * The interchange: a CURVE-authenticated ZeroMQ ROUTER that managers dial. It keeps the backlog, tracks each
 * manager's credit, sends tasks in batches, routes results back without decoding payloads, heartbeats,
 * retries the tasks of lost managers (bounded) and never sends a task to a manager whose block is about to
 * hit its walltime.
 *
 * State (INTERCHANGE_TRANSITIONS): created → running → stopping → stopped (created → stopped when never started).
 *
 * This file holds the interchange itself: its lifecycle, the socket, the in-process API, the strategy's view,
 * the message routing, registrations, heartbeats and stop. Its parts, which share its backlog, tasks held and
 * duration estimates: dispatch.ts (batches under credit windows, walltime fit, sources per manager),
 * result-intake.ts (results, duration estimates, the tasks of lost managers), manager-registry.ts (the
 * managers' book).
 */
import * as zmq from 'zeromq';
import { EventEmitter } from 'node:events';
import { encode } from '../../protocol/codec.js';
import { PROTOCOL_VERSION, parseFromManager, type ManagerToInterchange, type RegisterMessage, type ResultEnvelope, type TaskEnvelope } from '../../protocol/messages.js';
import { errorOutcome } from '../../protocol/payload.js';
import { SocketWriter } from '../../protocol/socket-writer.js';
import { ZapHandler } from '../../protocol/zap.js';
import type { WorkerChannelKeys } from '../../protocol/keys.js';
import { IllegalStateError, ProtocolError } from '../../errors.js';
import { Lifecycle, Once, type Transitions } from '../../lifecycle.js';
import { rateLimited, silentLogger, type Logger } from '../../logger.js';
import { TaskQueue } from './task-queue.js';
import { ManagerRegistry, type ManagerRecord } from './manager-registry.js';
import type { BlockLoad, EngineView } from './strategy.js';
import { portRange, printable } from './peer-checks.js';
import { checkNodeUses } from '../mpi/node-uses.js';
import { Dispatcher, type TaskRecord } from './dispatch.js';
import { ResultIntake } from './result-intake.js';

export type InterchangeState = 'created' | 'running' | 'stopping' | 'stopped';

export const INTERCHANGE_TRANSITIONS: Transitions<InterchangeState> = {
  created: ['running', 'stopped'],
  running: ['stopping'],
  stopping: ['stopped'],
  stopped: [],
};

export interface InterchangeOptions {
  keys: WorkerChannelKeys;
  /** Address to bind ("127.0.0.1", "0.0.0.0", an interface's IP). */
  address: string;
  /** A port, 0 for any, or a [low, high] range tried in order. */
  port: number | [number, number];
  heartbeatPeriodMs: number;
  heartbeatThresholdMs: number;
  /** Times a task is retried after its manager was lost (engine.max_retries, resolved by the config layer). */
  maxRetries: number;
  /** A manager whose block has less walltime left than this gets no task without a duration estimate (strategy.walltime_margin). */
  walltimeMarginMs: number;
  /** When set, only these function ids run; anything else fails with FunctionNotAllowed. */
  allowedFunctions?: ReadonlySet<string> | null;
  /**
   * Tasks of users other than the owner (with a `u` header) may run any function; when false (the default)
   * they run only functions in allowedFunctions, and none when that is unset. The owner's tasks are unaffected.
   */
  othersRunAnyFunction?: boolean;
  log?: Logger;
}

export interface InterchangeEvents {
  'manager-registered': [ManagerRecord];
  'manager-lost': [ManagerRecord, string];
  'manager-gone': [ManagerRecord, string];
}

export class Interchange extends EventEmitter<InterchangeEvents> implements EngineView {
  private readonly life: Lifecycle<InterchangeState>;
  private readonly stopping = new Once<TaskEnvelope[]>();
  port = 0;
  /** Called with every batch of results of tasks submitted with `submitMany` (not those of `submit`). */
  onResults: (results: ResultEnvelope[]) => void = () => {};
  /** Called with every batch sent to a manager (the task is now running); one call per batch, not per task. */
  onDispatched: ((tasks: TaskEnvelope[]) => void) | null = null;

  private readonly context = new zmq.Context();
  private readonly router: zmq.Router;
  private readonly zap: ZapHandler;
  private readonly writer: SocketWriter;
  private readonly log: Logger;
  private readonly warnPeer: (m: string) => void;
  private readonly queue = new TaskQueue<TaskRecord>();
  private readonly tasks = new Map<string, TaskRecord>();
  readonly registry: ManagerRegistry;
  /** Per-function duration estimates (ms): learned by the intake, read by dispatch. */
  private readonly estimates = new Map<string, number>();
  private readonly dispatcher: Dispatcher;
  private readonly intake: ResultIntake;
  private heartbeatTimer?: NodeJS.Timeout;

  constructor(private readonly options: InterchangeOptions) {
    super();
    this.log = options.log ?? silentLogger;
    this.life = new Lifecycle<InterchangeState>('interchange', 'created', INTERCHANGE_TRANSITIONS, { log: this.log });
    this.warnPeer = rateLimited((m) => this.log.warn(m));
    this.registry = new ManagerRegistry();
    this.zap = new ZapHandler({
      context: this.context,
      isAllowed: (_domain, key) => key === options.keys.manager.publicKey,
      onRefused: (_domain, address, key) => this.warnPeer(`refused a CURVE peer from ${address} with unknown key ${key.slice(0, 8)}…`),
    });
    this.router = new zmq.Router({
      context: this.context,
      curveServer: true,
      curvePublicKey: options.keys.interchange.publicKey,
      curveSecretKey: options.keys.interchange.secretKey,
      zapDomain: 'funcx-interchange',
      linger: 0,
      sendHighWaterMark: 100_000,
      receiveHighWaterMark: 100_000,
    });
    this.writer = new SocketWriter(this.router, (err) => this.warnPeer(`send failed: ${err.message}`));
    const { queue, tasks, estimates, registry, writer, warnPeer } = this;
    this.dispatcher = new Dispatcher({ host: this, queue, tasks, registry, estimates, writer, walltimeMarginMs: options.walltimeMarginMs, warnPeer });
    this.intake = new ResultIntake({ host: this, queue, tasks, estimates, dispatcher: this.dispatcher, maxRetries: options.maxRetries, log: this.log, warnPeer });
  }

  get state(): InterchangeState {
    return this.life.state;
  }

  private setState(next: InterchangeState): void {
    this.life.to(next);
  }

  /** Bind and start serving; returns the port bound. */
  async start(): Promise<number> {
    if (this.state !== 'created') throw new IllegalStateError(`interchange cannot start from state ${this.state}`);
    await this.zap.start();
    const { address, port } = this.options;
    const host = address.includes(':') ? `[${address}]` : address;
    const candidates = typeof port === 'number' ? [port] : portRange(port[0], port[1]);
    let lastError: Error | undefined;
    for (const p of candidates) {
      try {
        await this.router.bind(`tcp://${host}:${p}`);
        this.port = Number(/:(\d+)$/.exec(this.router.lastEndpoint ?? '')?.[1] ?? p);
        lastError = undefined;
        break;
      } catch (err) {
        lastError = err as Error;
      }
    }
    if (lastError) throw new Error(`interchange cannot bind ${address} port ${JSON.stringify(port)}: ${lastError.message}`);
    this.setState('running');
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.options.heartbeatPeriodMs);
    this.heartbeatTimer.unref();
    void this.receiveLoop();
    this.log.info(`listening on ${address}:${this.port}`);
    return this.port;
  }

  // ---- the in-process API ---------------------------------------------------------------------------------

  /** Submit one task; resolves with its result envelope (a failure is a result with `failed`, never a rejection). */
  submit(task: TaskEnvelope): Promise<ResultEnvelope> {
    return new Promise((resolve) => this.accept(task, resolve));
  }

  /** Submit many tasks; their results arrive through `onResults` in batches. */
  submitMany(tasks: TaskEnvelope[]): void {
    for (const t of tasks) this.accept(t, undefined);
  }

  private accept(env: TaskEnvelope, resolve: ((r: ResultEnvelope) => void) | undefined): void {
    if (this.state !== 'running') throw new IllegalStateError(`interchange is ${this.state}; it takes no tasks`);
    const allowed = this.options.allowedFunctions;
    if (allowed && !(env.fn !== undefined && allowed.has(env.fn))) {
      const what = env.fn === undefined ? 'a task without a registered function' : `function ${env.fn}`;
      this.deliver([{ id: env.id, failed: true, payload: errorOutcome('FunctionNotAllowed', `function not allowed: ${what} is not in this endpoint's allowed_functions`) }], resolve);
      return;
    }
    if (env.u !== undefined && !allowed && !this.options.othersRunAnyFunction) {
      const message = `function not allowed: this shared endpoint runs other users' tasks only for functions in its allowed_functions, and its profile sets none (or set allow_any_function_from)`;
      this.deliver([{ id: env.id, failed: true, payload: errorOutcome('FunctionNotAllowed', message) }], resolve);
      return;
    }
    if (this.tasks.has(env.id)) return; // a redelivered task we already hold: its result will come once
    const record: TaskRecord = { env, attempts: 0, manager: null, resolve };
    this.tasks.set(env.id, record);
    this.queue.push(record);
    this.dispatcher.schedule();
  }

  private deliver(results: ResultEnvelope[], resolve?: (r: ResultEnvelope) => void): void {
    if (resolve) resolve(results[0]);
    else this.onResults(results);
  }

  /** Tasks held (queued or running). */
  get pending(): number {
    return this.tasks.size;
  }

  // ---- EngineView (for the strategy) ----------------------------------------------------------------------

  backlog(): number {
    return this.queue.length;
  }

  loadByBlock(): Map<string, BlockLoad> {
    return this.registry.loadByBlock();
  }

  holdBlock(blockId: string): void {
    this.registry.heldBlocks.add(blockId);
  }

  releaseBlock(blockId: string): void {
    this.registry.heldBlocks.delete(blockId);
    this.dispatcher.schedule();
  }

  drainBlock(blockId: string): void {
    for (const m of this.registry.inBlock(blockId)) {
      if (m.state !== 'active') continue;
      m.state = 'draining';
      this.writer.send([m.identity, encode({ kind: 'drain' })]);
    }
  }

  /** The block's job has ended: any manager of it still on the books is gone; retry its tasks now. */
  forgetBlock(blockId: string, why: string): void {
    for (const m of this.registry.inBlock(blockId)) this.removeManager(m, `its block ended (${why})`, 'manager-lost');
    this.registry.heldBlocks.delete(blockId);
  }

  /** The largest per-function estimate (ms), for the strategy's sizing; undefined before any result. */
  typicalEstimateMs(): number | undefined {
    return this.intake.typicalEstimateMs();
  }

  // ---- receive --------------------------------------------------------------------------------------------

  private async receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.router) {
        const identity = frames[0];
        const key = identity.toString('latin1');
        if (frames.length !== 2) {
          this.warnPeer(`dropped a message of ${frames.length - 1} frames from ${printable(key)} (expected 1)`);
          continue;
        }
        let message;
        try {
          message = parseFromManager(frames[1]);
        } catch (err) {
          // A registration we cannot accept (another protocol version, a bad field) is answered, so the
          // manager says why it stops instead of probing on.
          if (err instanceof ProtocolError && err.messageKind === 'register' && this.registry.get(key) === undefined) {
            this.warnPeer(`refused a registration from ${printable(key)}: ${err.message}`);
            this.writer.send([identity, encode({ kind: 'refused', reason: err.message })]);
          } else {
            this.warnPeer(`dropped a bad frame from ${printable(key)}: ${(err as Error).message}`);
          }
          continue;
        }
        try {
          this.handle(identity, key, message);
        } catch (err) {
          this.warnPeer(`dropped a ${message.kind} message from ${printable(key)}: ${(err as Error).message}`);
        }
      }
    } catch (err) {
      if (this.state === 'running') this.log.error(`receive loop failed: ${(err as Error).message}`);
    }
  }

  private handle(identity: Buffer, key: string, message: ManagerToInterchange): void {
    const m = this.registry.get(key);
    if (message.kind === 'register') return this.onRegister(identity, key, m, message);
    if (m === undefined) {
      if (this.registry.wasLost(key)) {
        // A manager we gave up on (its tasks were retried elsewhere): tell it to go, never crash (Parsl #3632).
        this.warnPeer(`dropped a ${message.kind} from manager ${printable(key)}, already declared lost; telling it to shut down`);
        this.writer.send([identity, encode({ kind: 'shutdown' })]);
      } else {
        this.warnPeer(`dropped a ${message.kind} from unregistered peer ${printable(key)}`);
      }
      return;
    }
    m.lastSeen = Date.now();
    switch (message.kind) {
      case 'results':
        // The node map's entries are the MPI engine's to check (the parser checked it is an array).
        if (message.nodes !== undefined) m.mpiNodes = checkNodeUses(message.nodes);
        this.intake.onManagerResults(m, message.results, message.capacity);
        return;
      case 'heartbeat':
        if (message.pools !== undefined) m.pools = message.pools;
        return;
      case 'bye':
        this.removeManager(m, `said bye: ${message.reason}`, 'manager-gone');
        return;
      case 'missing':
        this.dispatcher.onMissing(m, message.ids);
        return;
      default: {
        const unhandled: never = message;
        this.warnPeer(`dropped an unhandled message ${JSON.stringify((unhandled as { kind: unknown }).kind)} from manager ${m.id}`);
      }
    }
  }

  /** A registration whose fields the parser checked (version included: a mismatch was refused there). */
  private onRegister(identity: Buffer, key: string, existing: ManagerRecord | undefined, reg: RegisterMessage): void {
    if (existing) {
      this.warnPeer(`dropped a second registration from manager ${existing.id} (block ${existing.blockId})`);
      return;
    }
    const m = this.registry.add(identity, key, reg);
    this.writer.send([
      identity,
      encode({ kind: 'registered', protocol: PROTOCOL_VERSION, heartbeatPeriodMs: this.options.heartbeatPeriodMs, heartbeatThresholdMs: this.options.heartbeatThresholdMs }),
    ]);
    this.log.info(`manager ${m.id} registered: host ${m.hostname} node ${m.node} block ${m.blockId || '-'}, ${m.workers} workers`);
    this.emit('manager-registered', m);
    this.dispatcher.schedule();
  }

  // ---- heartbeats and lost managers -----------------------------------------------------------------------

  private heartbeat(): void {
    const now = Date.now();
    const beat = encode({ kind: 'heartbeat' });
    for (const m of this.registry.all()) {
      const silent = now - m.lastSeen;
      if (silent > this.options.heartbeatThresholdMs) {
        this.removeManager(m, `silent for ${Math.round(silent / 1000)} s (threshold ${this.options.heartbeatThresholdMs / 1000} s)`, 'manager-lost');
      } else {
        this.writer.send([m.identity, beat]);
      }
    }
  }

  /** Forget a manager; its tasks are retried (bounded) or fail with ManagerLost naming it and its block. */
  private removeManager(m: ManagerRecord, reason: string, event: 'manager-lost' | 'manager-gone'): void {
    this.registry.remove(m, event === 'manager-lost');
    this.intake.reclaim(m, reason, event === 'manager-lost');
    this.emit(event, m, reason);
    this.dispatcher.schedule();
  }

  // ---- stop -----------------------------------------------------------------------------------------------

  /**
   * Stop: wait up to graceMs for in-flight tasks, then tell managers to shut down and close.
   * Tasks still held are returned so the caller can hand them back (the forwarder redelivers them).
   * Safe to call again.
   */
  stop(options: { graceMs?: number } = {}): Promise<TaskEnvelope[]> {
    return this.stopping.run(() => this.stopSteps(options.graceMs ?? 0));
  }

  private async stopSteps(graceMs: number): Promise<TaskEnvelope[]> {
    if (this.state === 'created') {
      this.setState('stopped');
      this.router.close();
      this.zap.close();
      return [];
    }
    this.setState('stopping');
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && this.registry.inflightTotal() > 0) await new Promise((r) => setTimeout(r, 50));
    const unfinished = [...this.tasks.values()].map((r) => r.env);
    const bye = encode({ kind: 'shutdown' });
    for (const m of this.registry.all()) this.writer.send([m.identity, bye]);
    await this.writer.flushed(1000);
    await new Promise((r) => setTimeout(r, 50));
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.writer.close();
    this.router.close();
    this.zap.close();
    this.setState('stopped');
    return unfinished;
  }
}
