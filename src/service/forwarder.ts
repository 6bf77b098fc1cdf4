/**
 * One forwarder per endpoint, in the service's process: three CURVE ROUTER sockets (tasks, results,
 * commands) in their own ZeroMQ context, whose ZAP handler lets in only the public key the endpoint
 * registered. The tasks table is the queue: tasks are taken from it as the endpoint grants credit, and
 * results are written to it without decoding their payloads.
 */
import * as zmq from 'zeromq';
import { randomUUID } from 'node:crypto';
import { encode, MAX_FRAME_BYTES } from '../protocol/codec.js';
import {
  FORWARDER_CHANNELS,
  PROTOCOL_VERSION,
  parseFromEndpoint,
  protocolMismatchMessage,
  type CommandReplyMessage,
  type EndpointCommand,
  type ForwarderAddress,
  type ForwarderChannel,
  type HelloMessage,
} from '../protocol/forwarder-messages.js';
import type { CurveKeyPair } from '../protocol/keys.js';
import type { ResultEnvelope } from '../protocol/messages.js';
import { errorOutcome } from '../protocol/payload.js';
import { DEFAULT_LIMITS } from './limits.js';

import { SocketWriter } from '../protocol/socket-writer.js';
import { ZapHandler } from '../protocol/zap.js';
import { FuncxError } from '../errors.js';
import { rateLimited, silentLogger, type Logger } from '../logger.js';
import type { EndpointState, Store, StoredResults } from './store/index.js';
import { SerialLane } from './serial-lane.js';
import { FunctionSources, prepareTasks, SentSources } from './task-payloads.js';
import type { StoredOutcome } from './routes/long-poll.js';

/** Binds of a forwarder's preferred port, 25 ms apart, before it takes another. */
const PREFERRED_PORT_TRIES = 20;

export interface ForwarderOptions {
  endpointId: string;
  store: Store;
  /** The forwarder's CURVE key pair (the service's, in FUNCX_SERVICE_HOME/keys). */
  keys: CurveKeyPair;
  /** The endpoint's registered CURVE public key: the only key let in. */
  endpointPublicKey: string;
  /** Address to bind. @default '127.0.0.1' */
  host?: string;
  /** Host told to the endpoint. @default host */
  advertiseHost?: string;
  /** Ports to try first (the previous run's), falling back to the range or an OS-chosen port. */
  preferredPorts?: Partial<Record<ForwarderChannel, number>> | null;
  /** Inclusive port range to bind in; OS-chosen ports when absent. */
  portRange?: readonly [number, number];
  /** @default 2000 */
  heartbeatPeriodMs?: number;
  /** The endpoint counts as Inactive after this long without a message. @default 10000 */
  heartbeatThresholdMs?: number;
  /** Largest result payload stored; a bigger one is stored as a ResultTooLarge error instead. @default 10 MiB */
  maxResultBytes?: number;
  /** Most tasks in one message. @default 1000 */
  batchSize?: number;
  /** Told the ids of tasks whose results were just stored, and what was stored for each (wakes long-polls). */
  onResults?: (taskIds: string[], outcome?: (id: string) => StoredOutcome | undefined) => void;
  log?: Logger;
}

/** Longest a reported start waits for a result batch to be written with before it is written alone. */
const RUNNING_FLUSH_MS = 100;

export class Forwarder {
  private readonly context = new zmq.Context();
  private readonly zap: ZapHandler;
  private readonly sockets = {} as Record<ForwarderChannel, zmq.Router>;
  private readonly writers = {} as Record<ForwarderChannel, SocketWriter>;
  /** The routing id of the endpoint's socket on each channel, once it said hello. */
  private readonly peers: Record<ForwarderChannel, Buffer | null> = { tasks: null, results: null, commands: null };
  private readonly pendingCommands = new Map<string, { resolve: (r: CommandReplyMessage) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private readonly log: Logger;
  private readonly warn: (m: string) => void;
  private readonly allowedKey: string;
  private readonly sources: FunctionSources;
  /** Sources sent on the current tasks connection (reset with it): each goes once, not once per task. */
  readonly sentSources = new SentSources();
  private credit = 0;
  private deliveryScheduled = false;
  /**
   * Whether the queue may hold tasks: `queuedGeneration` counts the times tasks may have been queued (notify,
   * a requeue), `emptyAt` is the generation a take last found the queue empty at. Credit the endpoint gives
   * back leads to a take only when they differ: after a single call the credit comes back with the result, and
   * the take found nothing, one database round trip per call for nothing (two with the delivery loop's own).
   */
  private queuedGeneration = 1;
  private emptyAt = 0;
  /**
   * The tasks channel's store work (requeue on hello, deliveries) runs one step at a time, so a delivery
   * never sends tasks taken for one connection to another, nor races a requeue.
   */
  private readonly taskLane = new SerialLane();
  /** Endpoint state writes, in the order they happened. */
  private readonly stateLane = new SerialLane();
  /** Result and running writes, in the order they came (a timer's running flush never overtakes a result). */
  private readonly resultsLane = new SerialLane();
  /** Tasks the endpoint said started, not written yet: they go with the next result batch (one transaction). */
  private runningIds: string[] = [];
  /** Writes `runningIds` alone when their results did not come within RUNNING_FLUSH_MS (one timer per forwarder). */
  private runningTimer?: NodeJS.Timeout;
  /** False once another replica serves the endpoint: its state is that replica's to record. */
  private stateRecorded = true;
  /** Message handlers still running (close waits for them before the store closes). */
  private readonly receiving = new Set<Promise<void>>();
  private lastSeen = 0;
  private lastSeenSaved = 0;
  private readonly openedAt = Date.now();
  private timer?: NodeJS.Timeout;
  private closed = false;
  private endpointState: EndpointState = 'Inactive';
  /** Connections refused by ZAP (wrong key). */
  refusedCount = 0;
  readonly ports = {} as Record<ForwarderChannel, number>;
  readonly heartbeatPeriodMs: number;
  readonly heartbeatThresholdMs: number;

  private constructor(private readonly options: ForwarderOptions) {
    this.log = options.log ?? silentLogger;
    this.warn = rateLimited((m) => this.log.warn(m));
    this.allowedKey = options.endpointPublicKey;
    this.sources = new FunctionSources(async (id) => (await options.store.function(id))?.source);
    this.heartbeatPeriodMs = options.heartbeatPeriodMs ?? 2000;
    this.heartbeatThresholdMs = options.heartbeatThresholdMs ?? 10_000;
    this.zap = new ZapHandler({
      context: this.context,
      isAllowed: (_domain, key) => key === this.allowedKey,
      onRefused: (_domain, address, key) => {
        this.refusedCount++;
        this.warn(`refused a connection from ${address}: CURVE key ${key.slice(0, 8)}… is not endpoint ${options.endpointId}'s`);
      },
    });
  }

  /** Bind the three sockets and start serving. */
  static async create(options: ForwarderOptions): Promise<Forwarder> {
    const f = new Forwarder(options);
    try {
      await f.start();
    } catch (err) {
      await f.close();
      throw err;
    }
    return f;
  }

  private async start(): Promise<void> {
    await this.zap.start();
    const host = this.options.host ?? '127.0.0.1';
    for (const channel of FORWARDER_CHANNELS) {
      const socket = new zmq.Router({
        context: this.context,
        curveServer: true,
        curvePublicKey: this.options.keys.publicKey,
        curveSecretKey: this.options.keys.secretKey,
        zapDomain: 'funcx-forwarder',
        linger: 0,
        maxMessageSize: MAX_FRAME_BYTES,
        sendHighWaterMark: 10_000,
        receiveHighWaterMark: 10_000,
      });
      this.sockets[channel] = socket;
      this.ports[channel] = await this.bind(socket, host, this.options.preferredPorts?.[channel]);
      this.writers[channel] = new SocketWriter(socket, (err) => this.warn(`${channel}: send failed: ${err.message}`));
      void this.receive(channel, socket);
    }
    await this.options.store.setEndpointPorts(this.options.endpointId, this.ports);
    this.timer = setInterval(() => this.tick(), this.heartbeatPeriodMs);
    this.timer.unref();
  }

  private async bind(socket: zmq.Router, host: string, preferred: number | undefined): Promise<number> {
    const candidates: number[] = [];
    if (preferred) candidates.push(preferred);
    const range = this.options.portRange;
    if (range) {
      for (let p = range[0]; p <= range[1]; p++) if (p !== preferred) candidates.push(p);
    } else {
      candidates.push(0);
    }
    for (const port of candidates) {
      // The preferred port was this endpoint's until a moment ago (a re-keyed forwarder closed just before):
      // ZeroMQ releases it from its I/O thread, so give it a few tries before moving the endpoint elsewhere,
      // where connections made with an old key would find nobody rather than be refused.
      const tries = port === preferred ? PREFERRED_PORT_TRIES : 1;
      for (let attempt = 1; attempt <= tries; attempt++) {
        try {
          await socket.bind(`tcp://${host}:${port}`);
          return Number(/:(\d+)$/.exec(socket.lastEndpoint ?? '')?.[1]);
        } catch (err) {
          if (port === 0) throw new FuncxError('FORWARDER_BIND', `cannot bind the forwarder on ${host}: ${(err as Error).message}`);
          if (attempt < tries) await new Promise((r) => setTimeout(r, 25));
        }
      }
    }
    throw new FuncxError('FORWARDER_BIND', `no free forwarder port on ${host}${range ? ` in ${range[0]}-${range[1]}` : ''}`);
  }

  /** Where the endpoint connects. */
  address(): ForwarderAddress {
    return { host: this.options.advertiseHost ?? this.options.host ?? '127.0.0.1', ports: { ...this.ports }, publicKey: this.options.keys.publicKey };
  }

  get state(): EndpointState {
    return this.endpointState;
  }

  /** When the endpoint last spoke (or, if it never did, when this forwarder opened): ForwarderPool.reapIdle. */
  get quietSince(): number {
    return this.lastSeen || this.openedAt;
  }

  /** The only CURVE key let in (a new key means a new forwarder: see ForwarderPool.ensure). */
  get endpointPublicKey(): string {
    return this.allowedKey;
  }

  /** The function was deleted: tasks still queued for it fail at delivery. */
  forgetFunction(functionId: string): void {
    this.sources.forget(functionId);
  }

  /** New tasks were queued for this endpoint: deliver what the credit allows (coalesced per tick). */
  notify(): void {
    this.queuedGeneration++;
    this.scheduleDelivery();
  }

  /** Queue one delivery pass behind the tasks channel's store work, unless one is queued and not started yet. */
  private scheduleDelivery(): void {
    if (this.deliveryScheduled || this.closed) return;
    this.deliveryScheduled = true;
    void this.taskLane.run(async () => {
      this.deliveryScheduled = false;
      await this.deliver();
    }).catch((err) => this.warn(`tasks: delivery failed (the tasks stay queued): ${(err as Error).message}`));
  }

  /** Ask the connected endpoint something over the commands channel. */
  command(command: EndpointCommand, timeoutMs = 5000): Promise<CommandReplyMessage> {
    const peer = this.peers.commands;
    if (!peer || this.endpointState !== 'Active') {
      return Promise.reject(new FuncxError('ENDPOINT_NOT_CONNECTED', `endpoint ${this.options.endpointId} is not connected`));
    }
    const id = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingCommands.delete(id);
        reject(new FuncxError('COMMAND_TIMEOUT', `endpoint ${this.options.endpointId} did not answer "${command.name}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pendingCommands.set(id, { resolve, reject, timer });
      this.writers.commands.send([peer, encode({ kind: 'command', id, command })]);
    });
  }

  /** Send what the credit allows. Runs only in the task lane. */
  private async deliver(): Promise<void> {
    const batchSize = this.options.batchSize ?? 1000;
    for (;;) {
      const peer = this.peers.tasks;
      if (!peer || this.credit <= 0 || this.closed) return;
      // Read before the take: the tasks of every notify up to it were committed before the take began.
      const generation = this.queuedGeneration;
      const asked = Math.min(this.credit, batchSize);
      const taken = await this.options.store.takeQueued(this.options.endpointId, asked);
      if (taken.length < asked) this.emptyAt = generation;
      if (taken.length === 0) return;
      const { messages, gone } = await prepareTasks(taken, this.sources, this.sentSources);
      if (gone.length > 0) await this.storeResults(gone);
      // The connection went away meanwhile: the tasks count as delivered and the next hello requeues them
      // (and the sent sources were reset with the connection).
      if (this.peers.tasks !== peer) return;
      for (const m of messages) {
        this.credit -= m.tasks.length;
        this.writers.tasks.send([peer, encode(m)]);
      }
      // Let other requests in between chunks: one user's 10,000-task batch must not hold the event loop (and
      // every other user's submissions and results) for the whole delivery.
      // The queue was empty: tasks queued since then notify, which schedules the next pass.
      if (taken.length < asked) return;
      if (taken.length === batchSize) await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  private async receive(channel: ForwarderChannel, socket: zmq.Router): Promise<void> {
    try {
      // One message at a time per channel: results are stored (and acked) in the order they came.
      for await (const [routingId, frame] of socket) {
        const handling = this.handle(channel, routingId, frame).catch((err) => {
          this.warn(`${channel}: dropped a message: ${(err as Error).message}`);
        });
        this.receiving.add(handling);
        await handling;
        this.receiving.delete(handling);
      }
    } catch (err) {
      if (!this.closed) this.log.error(`${channel}: receive loop failed: ${(err as Error).message}`);
    }
  }

  private async handle(channel: ForwarderChannel, routingId: Buffer, frame: Buffer | undefined): Promise<void> {
    if (!frame) throw new Error('message without a body frame');
    const m = parseFromEndpoint(channel, frame);
    if (m.kind === 'hello') return this.hello(channel, routingId, m);
    const known = this.peers[channel]?.equals(routingId) ?? false;
    // Results are idempotent and authenticated by CURVE: store them even from a connection we have no
    // session for, so a reconnect never delays a result.
    if (m.kind === 'results') {
      this.seen();
      if (this.closed) return;
      // Not acked when the store fails: the endpoint sends the batch again (the starts are best effort).
      const results = this.withinLimit(m.results);
      const running = this.takeRunningOf(results);
      // Starts the endpoint held for this batch to carry (forwarder-messages.ts).
      if (m.running) for (const id of m.running) running.push(id);
      const { stored, duplicates } = await this.resultsLane.run(() => this.storeResults(results, running));
      // The ack after the requests these results woke have answered (they answer in this turn's microtasks): a
      // ZeroMQ send wakes the I/O thread, which on a busy 2-CPU machine preempted the answer (call p50, issue 14).
      const ack = encode({ kind: 'ack', seq: m.seq, stored: stored.length, duplicates });
      setImmediate(() => this.writers.results.send([routingId, ack]));
      return;
    }
    if (!known) {
      this.writers[channel].send([routingId, encode({ kind: 'reset', reason: 'no session for this connection: say hello' })]);
      return;
    }
    this.seen();
    switch (m.kind) {
      case 'heartbeat':
        return;
      case 'credit':
        this.credit += m.n;
        if (this.queuedGeneration !== this.emptyAt) this.scheduleDelivery();
        return;
      case 'running':
        if (this.closed) return;
        for (const id of m.ids) this.runningIds.push(id);
        if (!this.runningTimer) {
          this.runningTimer = setTimeout(() => this.flushRunning(), RUNNING_FLUSH_MS);
          this.runningTimer.unref();
        }
        return;
      case 'command-reply': {
        const pending = this.pendingCommands.get(m.id);
        if (!pending) return;
        this.pendingCommands.delete(m.id);
        clearTimeout(pending.timer);
        pending.resolve(m);
        return;
      }
      default: {
        const unhandled: never = m;
        this.warn(`${channel}: dropped an unhandled message ${JSON.stringify((unhandled as { kind: unknown }).kind)}`);
      }
    }
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

  /** Write the reported starts on their own: no result batch came to carry them. */
  private flushRunning(): Promise<void> {
    const ids = this.takeRunning();
    if (ids.length === 0) return Promise.resolve();
    return this.resultsLane.run(async () => {
      await this.options.store.markRunning(this.options.endpointId, ids);
    }).catch((err) => this.warn(`cannot record ${ids.length} tasks as running: ${(err as Error).message}`));
  }

  private async storeResults(results: ResultEnvelope[], running: readonly string[] = []): Promise<StoredResults> {
    const out = await this.options.store.storeResults(this.options.endpointId, results, running);
    if (out.unknown > 0) this.warn(`dropped ${out.unknown} results for tasks that are not endpoint ${this.options.endpointId}'s`);
    if (out.stored.length > 0) this.options.onResults?.(out.stored, out.at === undefined ? undefined : storedOutcomes(results, out.at));
    return out;
  }

  /**
   * The service's own size check: the worker's limit is the endpoint owner's to change, and any user may run an
   * endpoint. An oversized result is replaced by a ResultTooLarge error for that task (nothing else is copied).
   */
  private withinLimit(results: ResultEnvelope[]): ResultEnvelope[] {
    const limit = this.options.maxResultBytes ?? DEFAULT_LIMITS.maxResultBytes;
    let out = results;
    for (let i = 0; i < results.length; i++) {
      const r = results[i];
      if (r.payload.length <= limit) continue;
      if (out === results) out = results.slice();
      this.warn(`endpoint ${this.options.endpointId} sent a result of ${r.payload.length} bytes for task ${r.id}: stored as ResultTooLarge`);
      out[i] = {
        id: r.id,
        failed: true,
        payload: errorOutcome('ResultTooLarge', `result of task ${r.id} is ${r.payload.length} bytes, over the service's limit of ${limit} bytes`),
      };
    }
    return out;
  }

  private async hello(channel: ForwarderChannel, routingId: Buffer, m: HelloMessage): Promise<void> {
    const refuse = (reason: string) => {
      // Rate-limited, and the peer's own values quoted: a peer holding the key must not flood or forge log lines.
      this.warn(`${channel}: refused hello: ${JSON.stringify(reason)}`);
      this.writers[channel].send([routingId, encode({ kind: 'refused', reason })]);
    };
    if (m.protocol !== PROTOCOL_VERSION) return refuse(protocolMismatchMessage('endpoint', m.protocol, 'forwarder'));
    if (m.endpointId !== this.options.endpointId) {
      return refuse(`this forwarder serves endpoint ${this.options.endpointId}, not ${m.endpointId}`);
    }
    if (channel === 'tasks') return this.taskLane.run(() => this.welcome(channel, routingId, m));
    return this.welcome(channel, routingId, m);
  }

  /** Accept a checked hello; on the tasks channel this runs in the task lane. */
  private async welcome(channel: ForwarderChannel, routingId: Buffer, m: HelloMessage): Promise<void> {
    if (this.closed) return;
    // A second hello on the same connection (the endpoint's retry crossed our welcome): nothing was lost
    // on it, so keep the credit count and the deliveries as they are.
    const sameConnection = this.peers[channel]?.equals(routingId) ?? false;
    let requeued = 0;
    // `resync`: the endpoint lacked a source a task named (function-sources.ts) and dropped the task: start
    // over as for a new connection.
    if (channel === 'tasks' && (!sameConnection || m.resync === true)) {
      this.sentSources.reset();
      // Whatever was delivered without a result may be lost with the old connection: send it again
      // (the endpoint drops ids it already holds), within the credit the endpoint says it has now.
      this.peers.tasks = null;
      requeued = await this.options.store.requeueInFlight(this.options.endpointId);
      this.queuedGeneration++;
      if (this.closed) return;
      this.credit = m.credit ?? 0;
    }
    this.peers[channel] = routingId;
    this.writers[channel].send([
      routingId,
      encode({ kind: 'welcome', protocol: PROTOCOL_VERSION, channel, heartbeatPeriodMs: this.heartbeatPeriodMs, heartbeatThresholdMs: this.heartbeatThresholdMs }),
    ]);
    this.log.info(`${channel}: endpoint session ${m.session.slice(0, 8)} connected${requeued ? `, ${requeued} unfinished tasks to send again` : ''}`);
    this.seen();
    if (channel === 'tasks') await this.deliver();
  }

  private seen(): void {
    const now = Date.now();
    this.lastSeen = now;
    if (this.endpointState !== 'Active') {
      this.endpointState = 'Active';
      this.lastSeenSaved = now;
      this.saveState('Active', now);
      this.log.info(`endpoint ${this.options.endpointId} is Active`);
    } else if (now - this.lastSeenSaved >= this.heartbeatPeriodMs) {
      this.lastSeenSaved = now;
      this.saveState('Active', now);
    }
  }

  /** Record the endpoint's state (in order, without holding up the message that caused it). */
  private saveState(state: EndpointState, lastSeen: number | null = null): void {
    if (!this.stateRecorded) return;
    void this.stateLane.run(() => this.options.store.setEndpointState(this.options.endpointId, state, lastSeen))
      .catch((err) => this.warn(`cannot record endpoint ${this.options.endpointId} as ${state}: ${(err as Error).message}`));
  }

  private tick(): void {
    if (this.closed) return;
    if (this.endpointState === 'Active' && Date.now() - this.lastSeen > this.heartbeatThresholdMs) {
      this.markInactive(`no message for ${Date.now() - this.lastSeen} ms`);
      return;
    }
    const beat = encode({ kind: 'heartbeat' });
    for (const channel of FORWARDER_CHANNELS) {
      const peer = this.peers[channel];
      if (peer) this.writers[channel].send([peer, beat]);
    }
  }

  private markInactive(why: string): void {
    this.endpointState = 'Inactive';
    this.peers.tasks = this.peers.results = this.peers.commands = null;
    this.credit = 0;
    this.sentSources.reset();
    this.saveState('Inactive');
    this.log.info(`endpoint ${this.options.endpointId} is Inactive (${why})`);
    for (const [id, pending] of this.pendingCommands) {
      clearTimeout(pending.timer);
      pending.reject(new FuncxError('ENDPOINT_NOT_CONNECTED', `endpoint ${this.options.endpointId} went away`));
      this.pendingCommands.delete(id);
    }
  }

  /**
   * Stop serving; the endpoint is marked Inactive. Resolves once no store call of this forwarder is left
   * running, so the store can close after. Safe to call twice (every caller awaits the same promise).
   */
  close(options: { recordState?: boolean } = {}): Promise<void> {
    this.closing ??= this.shutdown(options.recordState ?? true);
    return this.closing;
  }

  private closing?: Promise<void>;

  private async shutdown(recordState: boolean): Promise<void> {
    if (!recordState) this.stateRecorded = false;
    if (this.endpointState === 'Active') this.markInactive('forwarder closed');
    this.closed = true;
    clearInterval(this.timer);
    for (const channel of FORWARDER_CHANNELS) {
      this.writers[channel]?.close();
      this.sockets[channel]?.close();
    }
    this.zap.close();
    await Promise.allSettled([...this.receiving]);
    await this.flushRunning();
    await Promise.allSettled([this.taskLane.idle(), this.stateLane.idle(), this.resultsLane.idle()]);
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
