/**
 * The endpoint's side of the forwarder: three DEALER sockets dialing out with CURVE (the endpoint's key
 * pair, the forwarder's public key), a hello/welcome handshake per channel, heartbeats both ways, credit
 * for tasks, and results kept until the forwarder acknowledges them (on disk, one 0600 file per batch, once
 * not acknowledged within RESULT_SPOOL_DEFAULTS.write_after_ms), then sent again after a reconnect or a
 * restart. Tasks the forwarder sends twice are dropped here.
 *
 * State (FORWARDER_CLIENT_TRANSITIONS): created → connecting → open → closing → closed. Whether the link is
 * up right now (`isConnected`, the 'lost'/'connected' events) is apart from the lifecycle: an open client
 * reconnects by itself. close() is idempotent: every caller awaits the same promise.
 *
 * This file holds the connection: the sockets, the session on each channel (hello, welcome, reset, refused),
 * heartbeats, the lifecycle, finding a moved forwarder and close. Its parts: task-intake.ts (credit, new and
 * duplicate tasks, resync), result-sender.ts (result batches, acks, the disk spool, reported starts).
 */
import * as zmq from 'zeromq';
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { encode, MAX_FRAME_BYTES } from '../../protocol/codec.js';
import {
  FORWARDER_CHANNELS, PROTOCOL_VERSION, parseFromForwarder,
  type CommandReply, type EndpointCommand, type ForwarderAddress, type ForwarderChannel, type HelloMessage,
} from '../../protocol/forwarder-messages.js';
import type { ResultEnvelope, TaskEnvelope } from '../../protocol/messages.js';
import type { CurveKeyPair } from '../../protocol/keys.js';
import { FuncxError, IllegalStateError, ProtocolError } from '../../errors.js';
import { rateLimited, silentLogger, type Logger } from '../../logger.js';
import { Lifecycle, Once, type Transitions } from '../../lifecycle.js';
import { RESULT_SPOOL_DEFAULTS } from '../../config/defaults.js';
import type { EndpointSourceCache } from './function-cache.js';
import { TaskIntake, type ChannelSend } from './task-intake.js';
import { ResultSender } from './result-sender.js';

export type ForwarderClientState = 'created' | 'connecting' | 'open' | 'closing' | 'closed';

export const FORWARDER_CLIENT_TRANSITIONS: Transitions<ForwarderClientState> = {
  created: ['connecting', 'closing'],
  connecting: ['open', 'closing'],
  open: ['closing'],
  closing: ['closed'],
  closed: [],
};

export interface ForwarderClientOptions {
  endpointId: string;
  /** From registration. */
  forwarder: ForwarderAddress;
  /** The endpoint's CURVE key pair (its public key is the one registered). */
  keys: CurveKeyPair;
  /** Unacknowledged result batches live here (created 0700; files 0600). */
  resultsDir: string;
  /**
   * Keep this many tasks outstanding by itself (granted at start, one more per result sent: at once below half
   * the window, else on the next tick); unset: call grant().
   */
  window?: number;
  /** `start()` gives up after this long without a welcome on every channel. @default 10000 */
  connectTimeoutMs?: number;
  /**
   * Write a result batch to disk once it is unacknowledged this long (ms); 0 writes every batch at once.
   * @default RESULT_SPOOL_DEFAULTS.write_after_ms
   */
  spoolAfterMs?: number;
  /** Called when the forwarder is lost, to register again and learn its (maybe new) address. */
  reregister?: () => Promise<ForwarderAddress>;
  log?: Logger;
}

export interface ForwarderClientEvents {
  /** New tasks (never one this client already holds or has a result for). */
  tasks: [tasks: TaskEnvelope[]];
  /** The service asks something; call `reply` once. */
  command: [command: EndpointCommand, reply: (reply: CommandReply) => void];
  /** All three channels are welcomed (after start and after every reconnect). */
  connected: [];
  /** Nothing heard from the forwarder for the heartbeat threshold. */
  lost: [reason: string];
  /** The forwarder refused the session (e.g. a protocol version mismatch). */
  refused: [reason: string];
  /** `count` results were acknowledged and removed from disk. */
  acked: [count: number];
}

const TICK_MS = 100;
const HELLO_RETRY_MS = 500;

export class ForwarderClient extends EventEmitter<ForwarderClientEvents> {
  private readonly session = randomUUID();
  private readonly log: Logger;
  private readonly warn: (m: string) => void;
  private address: ForwarderAddress;
  private sockets = {} as Record<ForwarderChannel, zmq.Dealer>;
  private chains = {} as Record<ForwarderChannel, Promise<void>>;
  private readonly welcomed: Record<ForwarderChannel, boolean> = { tasks: false, results: false, commands: false };
  private readonly lastHeard: Record<ForwarderChannel, number> = { tasks: 0, results: 0, commands: 0 };
  private readonly helloAt: Record<ForwarderChannel, number> = { tasks: 0, results: 0, commands: 0 };
  private lastBeat = 0;
  private heartbeatPeriodMs = 2000;
  private heartbeatThresholdMs = 10_000;
  /** Credit, new and duplicate tasks, resync (task-intake.ts). */
  private readonly tasks: TaskIntake;
  /** Result batches, acks, the disk spool, reported starts (result-sender.ts). */
  private readonly results: ResultSender;
  /** Function sources the forwarder sent (function-cache.ts). */
  readonly sources: EndpointSourceCache;
  private connected = false;
  private downSince = Date.now();
  private lostReported = false;
  /** When to ask the service where the forwarder is, while disconnected (at once after a silent threshold). */
  private reregisterAt = Infinity;
  private reregistering = false;
  private timer?: NodeJS.Timeout;
  readonly life: Lifecycle<ForwarderClientState>;
  private readonly closing = new Once();
  private starting?: { resolve: () => void; reject: (e: Error) => void };

  constructor(private readonly options: ForwarderClientOptions) {
    super();
    this.log = options.log ?? silentLogger;
    this.life = new Lifecycle<ForwarderClientState>('forwarder client', 'created', FORWARDER_CLIENT_TRANSITIONS, { log: this.log });
    this.warn = rateLimited((m) => this.log.warn(m));
    this.address = options.forwarder;
    const { send, welcomed, life, warn, log } = this;
    this.tasks = new TaskIntake({ window: options.window, send, helloTasks: () => this.sendHello('tasks'), events: this, warn });
    this.sources = this.tasks.sources;
    const spoolAfterMs = options.spoolAfterMs ?? RESULT_SPOOL_DEFAULTS.write_after_ms;
    this.results = new ResultSender({ resultsDir: options.resultsDir, spoolAfterMs, send, welcomed, life, tasks: this.tasks, events: this, log });
  }

  /** Connect and handshake on all three channels; rejects if refused or nothing answers in time. */
  start(): Promise<void> {
    if (!this.life.is('created')) return Promise.reject(new IllegalStateError(`a ForwarderClient starts once (it is ${this.life.state})`));
    this.life.to('connecting');
    const timeoutMs = this.options.connectTimeoutMs ?? 10_000;
    const { host, ports } = this.address;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.starting = undefined;
        reject(new FuncxError('FORWARDER_UNREACHABLE', `the forwarder at ${host} (ports ${ports.tasks}, ${ports.results}, ${ports.commands}) did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.starting = {
        resolve: () => (clearTimeout(timer), (this.starting = undefined), this.life.tryTo('open'), resolve()),
        reject: (e) => (clearTimeout(timer), (this.starting = undefined), reject(e)),
      };
      this.openSockets();
      this.timer = setInterval(() => this.tick(), TICK_MS);
    });
  }

  /** Accept `n` more tasks. */
  grant(n: number): void {
    this.tasks.grant(n);
  }

  /**
   * Hand results back: sent, and kept until the forwarder acks them; resolves once they are acked or on disk.
   * A batch goes to disk when it cannot be sent now, when it is not acked within `spoolAfterMs`, or at close.
   */
  sendResults(results: ResultEnvelope[]): Promise<void> {
    if (this.closed) return Promise.reject(new FuncxError('CLOSED', 'the forwarder client is closed'));
    if (results.length === 0) return Promise.resolve();
    return this.results.sendResults(results);
  }

  /**
   * Tell the service these tasks started running (best effort): with their results when those come within
   * RUNNING_HOLD_MS, else in a `running` message then.
   */
  markRunning(ids: string[]): void {
    if (ids.length === 0 || this.closed) return;
    this.results.markRunning(ids);
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Unacknowledged result batches (on disk). */
  get pendingBatches(): number {
    return this.results.pendingBatches;
  }

  /** Credit the forwarder still has from us. */
  get credit(): number {
    return this.tasks.outstanding;
  }

  /** Messages with tasks naming a source this endpoint lacked (for tests). */
  get resyncCount(): number {
    return this.tasks.resyncCount;
  }

  private openSockets(): void {
    const { host, ports, publicKey } = this.address;
    for (const channel of FORWARDER_CHANNELS) {
      const socket = new zmq.Dealer({
        curveServerKey: publicKey,
        curvePublicKey: this.options.keys.publicKey,
        curveSecretKey: this.options.keys.secretKey,
        linger: 0,
        // Queue only on a live connection and never block: what cannot be sent now is sent again later
        // (hello, credit in the next hello, results from disk).
        immediate: true,
        sendTimeout: 0,
        sendHighWaterMark: 100_000,
        receiveHighWaterMark: 100_000,
        maxMessageSize: MAX_FRAME_BYTES,
      });
      this.sockets[channel] = socket;
      this.chains[channel] = Promise.resolve();
      this.welcomed[channel] = false;
      this.helloAt[channel] = 0;
      socket.connect(`tcp://${host.includes(':') ? `[${host}]` : host}:${ports[channel]}`);
      void this.watch(channel, socket);
      void this.receive(channel, socket);
    }
  }

  private async watch(channel: ForwarderChannel, socket: zmq.Dealer): Promise<void> {
    try {
      for await (const event of socket.events) {
        if (event.type === 'handshake') this.sendHello(channel);
        if (event.type === 'handshake:error:auth') {
          const reason = `the forwarder at ${this.address.host}:${this.address.ports[channel]} refused this endpoint's CURVE key (re-register the endpoint)`;
          if (this.starting) this.starting.reject(new FuncxError('FORWARDER_REFUSED', reason));
          else this.warn(reason);
        }
      }
    } catch {
      // The socket was closed.
    }
  }

  private async receive(channel: ForwarderChannel, socket: zmq.Dealer): Promise<void> {
    try {
      for await (const [frame] of socket) {
        try {
          this.handle(channel, frame);
        } catch (err) {
          this.warn(`${channel}: dropped a message from the forwarder: ${(err as Error).message}`);
        }
      }
    } catch (err) {
      if (!this.closed && this.sockets[channel] === socket) this.log.error(`${channel}: receive failed: ${(err as Error).message}`);
    }
  }

  private handle(channel: ForwarderChannel, frame: Buffer): void {
    const m = parseFromForwarder(channel, frame);
    this.lastHeard[channel] = Date.now();
    switch (m.kind) {
      case 'welcome':
        if (m.protocol !== PROTOCOL_VERSION) throw new ProtocolError(`welcome with protocol ${m.protocol}`);
        this.welcomed[channel] = true;
        this.heartbeatPeriodMs = m.heartbeatPeriodMs;
        this.heartbeatThresholdMs = m.heartbeatThresholdMs;
        if (channel === 'results') this.results.sendAll();
        if (channel === 'tasks') this.tasks.resyncPending = false;
        if (!this.connected && FORWARDER_CHANNELS.every((c) => this.welcomed[c])) {
          this.connected = true;
          this.lostReported = false;
          this.log.info(`connected to the forwarder at ${this.address.host}`);
          this.starting?.resolve();
          this.emit('connected');
        }
        return;
      case 'refused':
        this.warn(`the forwarder refused the ${channel} channel: ${m.reason}`);
        if (this.starting) this.starting.reject(new ProtocolError(m.reason));
        else this.emit('refused', m.reason);
        return;
      case 'reset':
        this.markDown(channel);
        this.sendHello(channel);
        return;
      case 'heartbeat':
        return;
      case 'tasks':
        return this.tasks.take(m);
      case 'ack':
        return this.results.acked(m.seq);
      case 'command': {
        let replied = false;
        const reply = (r: CommandReply) => {
          if (replied) return;
          replied = true;
          this.send('commands', { kind: 'command-reply', id: m.id, ...r });
        };
        if (this.listenerCount('command') === 0) reply({ ok: false, error: 'this endpoint does not take commands' });
        else this.emit('command', m.command, reply);
        return;
      }
      default: {
        const unhandled: never = m;
        throw new ProtocolError(`unhandled message ${JSON.stringify((unhandled as { kind: unknown }).kind)} on the ${channel} channel`);
      }
    }
  }

  private sendHello(channel: ForwarderChannel): void {
    this.helloAt[channel] = Date.now();
    const hello: HelloMessage = { kind: 'hello', protocol: PROTOCOL_VERSION, endpointId: this.options.endpointId, channel, session: this.session };
    if (channel !== 'tasks') return this.send(channel, hello);
    this.send(channel, { ...hello, credit: this.tasks.outstanding, ...(this.tasks.resyncPending ? { resync: true } : {}) });
  }

  /** zeromq.js allows one send at a time per socket: chain them. A message that cannot go now is dropped. */
  private readonly send: ChannelSend = (channel, message, onFail) => {
    const socket = this.sockets[channel];
    if (!socket || this.closed) return onFail?.();
    const frame = Buffer.isBuffer(message) ? message : encode(message);
    this.chains[channel] = this.chains[channel].then(
      () => socket.send(frame).catch((err: Error & { code?: string }) => {
        onFail?.();
        if (err.code !== 'EAGAIN' && !this.closed) this.warn(`${channel}: send failed: ${err.message}`);
      }),
    );
  };

  private markDown(channel: ForwarderChannel): void {
    this.welcomed[channel] = false;
    if (!this.connected) return;
    this.connected = false;
    this.downSince = Date.now();
    this.reregisterAt = this.downSince + this.heartbeatThresholdMs;
  }

  private tick(): void {
    const now = Date.now();
    this.tasks.payOwed();
    const beat = now - this.lastBeat >= this.heartbeatPeriodMs;
    if (beat) this.lastBeat = now;
    for (const channel of FORWARDER_CHANNELS) {
      if (this.welcomed[channel] && now - this.lastHeard[channel] > this.heartbeatThresholdMs) {
        this.log.warn(`${channel}: nothing from the forwarder for ${now - this.lastHeard[channel]} ms`);
        const wasConnected = this.connected;
        this.markDown(channel);
        // A whole threshold of silence already: ask where the forwarder is now rather than wait another one
        // (a replica killed behind a load balancer fails over in one threshold, not two).
        if (wasConnected) {
          this.reregisterAt = now;
          this.reportLost(`no answer from the forwarder for ${now - this.lastHeard[channel]} ms`);
        }
      }
      if (!this.welcomed[channel] || (channel === 'tasks' && this.tasks.resyncPending)) {
        if (now - this.helloAt[channel] >= HELLO_RETRY_MS) this.sendHello(channel);
      } else if (beat) this.send(channel, { kind: 'heartbeat' });
    }
    this.results.tick(now, this.heartbeatThresholdMs);
    if (!this.connected && !this.starting && now - this.downSince > this.heartbeatThresholdMs) {
      this.reportLost(`no answer from the forwarder for ${now - this.downSince} ms`);
    }
    if (!this.connected && !this.starting && now >= this.reregisterAt && this.options.reregister && !this.reregistering) void this.findForwarder();
  }

  /** Say once per outage that the forwarder is gone ('lost'); 'connected' ends the outage. */
  private reportLost(reason: string): void {
    if (this.lostReported) return;
    this.lostReported = true;
    this.log.warn(`lost the forwarder at ${this.address.host}`);
    this.emit('lost', reason);
  }

  /** Ask the service where the forwarder is now (it may have restarted on other ports) and move there. */
  private async findForwarder(): Promise<void> {
    this.reregistering = true;
    try {
      const next = await this.options.reregister!();
      const a = this.address;
      if (this.closed) return;
      if (next.host !== a.host || next.publicKey !== a.publicKey || FORWARDER_CHANNELS.some((c) => next.ports[c] !== a.ports[c])) {
        this.log.info(`the forwarder moved to ${next.host} (ports ${next.ports.tasks}, ${next.ports.results}, ${next.ports.commands})`);
        for (const c of FORWARDER_CHANNELS) this.sockets[c].close();
        this.address = next;
        this.openSockets();
      }
    } catch (err) {
      this.warn(`cannot register again: ${(err as Error).message}`);
    } finally {
      // Try again no sooner than one threshold later.
      this.reregisterAt = Date.now() + this.heartbeatThresholdMs;
      this.reregistering = false;
    }
  }

  /** Sends and receives go on until `closed` (results written while closing are still sent). */
  private get closed(): boolean {
    return this.life.is('closed');
  }

  /**
   * Stop: results not yet acked are written (if they were not) and stay on disk for the next start.
   * Idempotent: all callers await one close.
   */
  close(): Promise<void> {
    return this.closing.run(async () => {
      this.life.to('closing');
      await this.results.saveAll();
      this.life.to('closed');
      clearInterval(this.timer);
      this.results.close();
      this.starting?.reject(new FuncxError('CLOSED', 'the forwarder client was closed while connecting'));
      for (const c of FORWARDER_CHANNELS) this.sockets[c]?.close();
    });
  }
}
