/**
 * One forwarder per endpoint, in the service's process: three CURVE ROUTER sockets (tasks, results,
 * commands) in their own ZeroMQ context, whose ZAP handler lets in only the public key the endpoint
 * registered. The tasks table is the queue: tasks are taken from it as the endpoint grants credit, and
 * results are written to it without decoding their payloads.
 *
 * This file holds the connection: sessions (hello, welcome, reset), the forwarder's state (ForwarderState:
 * every change is made in `seen`, `markInactive` and `shutdown`), heartbeats, the message dispatch and
 * shutdown. Its parts: delivery.ts (credit and task delivery), results.ts (result batches, acks, starts),
 * commands.ts (commands waiting on a reply), sockets.ts (the sockets and their ports).
 */
import * as zmq from 'zeromq';
import { encode } from '../../protocol/codec.js';
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
} from '../../protocol/forwarder-messages.js';
import type { CurveKeyPair } from '../../protocol/keys.js';
import { DEFAULT_LIMITS, SERVICE_DEFAULTS } from '../limits.js';

import { SocketWriter } from '../../protocol/socket-writer.js';
import { ZapHandler } from '../../protocol/zap.js';
import { FuncxError } from '../../errors.js';
import { Lifecycle, type Transitions } from '../../lifecycle.js';
import { rateLimited, silentLogger, type Logger } from '../../logger.js';
import type { EndpointState, Store } from '../store/index.js';
import { SerialLane } from '../serial-lane.js';
import type { SentSources } from '../task-payloads.js';
import type { StoredOutcome } from '../routes/long-poll.js';
import { PendingCommands } from './commands.js';
import { TaskDelivery } from './delivery.js';
import { ResultIntake } from './results.js';
import { bindPort, openRouter } from './sockets.js';

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

/**
 * The endpoint's state as this forwarder sees it, and closed. Inactive until the endpoint speaks; Active
 * while it does (`seen`); Inactive again after a heartbeat threshold of silence (`markInactive`); closed by
 * `close()` (terminal: a message still arriving then changes nothing, and records nothing).
 */
export type ForwarderState = 'Inactive' | 'Active' | 'closed';

const FORWARDER_TRANSITIONS: Transitions<ForwarderState> = {
  Inactive: ['Active', 'closed'],
  Active: ['Inactive', 'closed'],
  closed: [],
};

export class Forwarder {
  private readonly context = new zmq.Context();
  private readonly zap: ZapHandler;
  private readonly sockets = {} as Record<ForwarderChannel, zmq.Router>;
  private readonly writers = {} as Record<ForwarderChannel, SocketWriter>;
  /** The routing id of the endpoint's socket on each channel, once it said hello. */
  private readonly peers: Record<ForwarderChannel, Buffer | null> = { tasks: null, results: null, commands: null };
  private readonly commands: PendingCommands;
  private readonly delivery: TaskDelivery;
  private readonly results: ResultIntake;
  private readonly log: Logger;
  private readonly warn: (m: string) => void;
  private readonly allowedKey: string;
  /** Sources sent on the current tasks connection (reset with it): each goes once, not once per task. */
  readonly sentSources: SentSources;
  /** Endpoint state writes, in the order they happened. */
  private readonly stateLane = new SerialLane();
  /** False once another replica serves the endpoint: its state is that replica's to record. */
  private stateRecorded = true;
  /** Message handlers still running (close waits for them before the store closes). */
  private readonly receiving = new Set<Promise<void>>();
  private lastSeen = 0;
  private lastSeenSaved = 0;
  private readonly openedAt = Date.now();
  private timer?: NodeJS.Timeout;
  private readonly lifecycle: Lifecycle<ForwarderState>;
  /** Connections refused by ZAP (wrong key). */
  refusedCount = 0;
  readonly ports = {} as Record<ForwarderChannel, number>;
  readonly heartbeatPeriodMs: number;
  readonly heartbeatThresholdMs: number;

  private constructor(private readonly options: ForwarderOptions) {
    this.log = options.log ?? silentLogger;
    this.lifecycle = new Lifecycle<ForwarderState>(`forwarder ${options.endpointId}`, 'Inactive', FORWARDER_TRANSITIONS, { log: this.log });
    this.warn = rateLimited((m) => this.log.warn(m));
    this.allowedKey = options.endpointPublicKey;
    const { endpointId, store } = options;
    this.commands = new PendingCommands(endpointId);
    this.results = new ResultIntake({
      endpointId,
      store,
      maxResultBytes: options.maxResultBytes ?? DEFAULT_LIMITS.maxResultBytes,
      writers: this.writers,
      onResults: options.onResults,
      warn: this.warn,
    });
    this.delivery = new TaskDelivery({
      endpointId,
      store,
      batchSize: options.batchSize ?? SERVICE_DEFAULTS.forwarderBatchSize,
      peers: this.peers,
      writers: this.writers,
      results: this.results,
      warn: this.warn,
    });
    this.sentSources = this.delivery.sentSources;
    this.heartbeatPeriodMs = options.heartbeatPeriodMs ?? SERVICE_DEFAULTS.heartbeatPeriodMs;
    this.heartbeatThresholdMs = options.heartbeatThresholdMs ?? SERVICE_DEFAULTS.heartbeatThresholdMs;
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
      const socket = openRouter(this.context, this.options.keys);
      this.sockets[channel] = socket;
      this.ports[channel] = await bindPort(socket, host, this.options.preferredPorts?.[channel], this.options.portRange);
      this.writers[channel] = new SocketWriter(socket, (err) => this.warn(`${channel}: send failed: ${err.message}`));
      void this.receive(channel, socket);
    }
    await this.options.store.setEndpointPorts(this.options.endpointId, this.ports);
    this.timer = setInterval(() => this.tick(), this.heartbeatPeriodMs);
    this.timer.unref();
  }

  /** Where the endpoint connects. */
  address(): ForwarderAddress {
    return { host: this.options.advertiseHost ?? this.options.host ?? '127.0.0.1', ports: { ...this.ports }, publicKey: this.options.keys.publicKey };
  }

  /** The endpoint's state (Inactive once closed). */
  get state(): EndpointState {
    return this.lifecycle.state === 'Active' ? 'Active' : 'Inactive';
  }

  private get closed(): boolean {
    return this.lifecycle.state === 'closed';
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
    this.delivery.forgetFunction(functionId);
  }

  /** New tasks were queued for this endpoint: deliver what the credit allows (coalesced per tick). */
  notify(): void {
    this.delivery.notify();
  }

  /** Ask the connected endpoint something over the commands channel. */
  command(command: EndpointCommand, timeoutMs = SERVICE_DEFAULTS.commandTimeoutMs): Promise<CommandReplyMessage> {
    const peer = this.peers.commands;
    if (!peer || this.lifecycle.state !== 'Active') {
      return Promise.reject(new FuncxError('ENDPOINT_NOT_CONNECTED', `endpoint ${this.options.endpointId} is not connected`));
    }
    return this.commands.ask(this.writers.commands, peer, command, timeoutMs);
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
      this.results.ack(routingId, m.seq, await this.results.store(m));
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
        this.delivery.credited(m.n);
        return;
      case 'running':
        if (this.closed) return;
        this.results.started(m.ids);
        return;
      case 'command-reply':
        this.commands.answer(m);
        return;
      default: {
        const unhandled: never = m;
        this.warn(`${channel}: dropped an unhandled message ${JSON.stringify((unhandled as { kind: unknown }).kind)}`);
      }
    }
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
    if (channel === 'tasks') return this.delivery.lane.run(() => this.welcome(channel, routingId, m));
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
      requeued = await this.delivery.restart();
      if (this.closed) return;
      this.delivery.setCredit(m.credit ?? 0);
    }
    this.peers[channel] = routingId;
    this.writers[channel].send([
      routingId,
      encode({ kind: 'welcome', protocol: PROTOCOL_VERSION, channel, heartbeatPeriodMs: this.heartbeatPeriodMs, heartbeatThresholdMs: this.heartbeatThresholdMs }),
    ]);
    this.log.info(`${channel}: endpoint session ${m.session.slice(0, 8)} connected${requeued ? `, ${requeued} unfinished tasks to send again` : ''}`);
    this.seen();
    if (channel === 'tasks') await this.delivery.deliver();
  }

  /** The endpoint spoke: it is Active (the one change to Active), and its last-seen time is saved now and then. */
  private seen(): void {
    const now = Date.now();
    this.lastSeen = now;
    if (this.lifecycle.state === 'closed') return;
    if (this.lifecycle.state === 'Inactive') {
      this.lifecycle.to('Active');
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
    if (this.lifecycle.state === 'Active' && Date.now() - this.lastSeen > this.heartbeatThresholdMs) {
      this.markInactive(`no message for ${Date.now() - this.lastSeen} ms`);
      return;
    }
    const beat = encode({ kind: 'heartbeat' });
    for (const channel of FORWARDER_CHANNELS) {
      const peer = this.peers[channel];
      if (peer) this.writers[channel].send([peer, beat]);
    }
  }

  /** The endpoint went away (the one change to Inactive): every session ends, and commands waiting on it fail. */
  private markInactive(why: string): void {
    this.lifecycle.to('Inactive');
    this.peers.tasks = this.peers.results = this.peers.commands = null;
    this.delivery.disconnected();
    this.saveState('Inactive');
    this.log.info(`endpoint ${this.options.endpointId} is Inactive (${why})`);
    this.commands.rejectAll();
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
    if (this.lifecycle.state === 'Active') this.markInactive('forwarder closed');
    this.lifecycle.to('closed');
    this.delivery.stop();
    clearInterval(this.timer);
    for (const channel of FORWARDER_CHANNELS) {
      this.writers[channel]?.close();
      this.sockets[channel]?.close();
    }
    this.zap.close();
    await Promise.allSettled([...this.receiving]);
    await this.results.flushRunning();
    await Promise.allSettled([this.delivery.lane.idle(), this.stateLane.idle(), this.results.lane.idle()]);
  }
}
