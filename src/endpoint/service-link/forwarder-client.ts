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
 */
import * as zmq from 'zeromq';
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { encode, MAX_FRAME_BYTES } from '../../protocol/codec.js';
import {
  FORWARDER_CHANNELS, PROTOCOL_VERSION, parseFromForwarder,
  type CommandReply, type EndpointCommand, type EndpointToForwarder, type ForwarderAddress, type ForwarderChannel, type HelloMessage,
} from '../../protocol/forwarder-messages.js';
import type { ResultEnvelope, TaskEnvelope } from '../../protocol/messages.js';
import type { CurveKeyPair } from '../../protocol/keys.js';
import { FuncxError, IllegalStateError, ProtocolError } from '../../errors.js';
import { rateLimited, silentLogger, type Logger } from '../../logger.js';
import { Lifecycle, Once, type Transitions } from '../../lifecycle.js';
import { ResultSpool, type SpooledBatch as Batch } from './result-spool.js';
import { RESULT_SPOOL_DEFAULTS } from '../../config/defaults.js';
import { EndpointSourceCache } from './function-cache.js';

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
/**
 * How long a reported start waits for its task's result batch to carry it (`running` in that batch) before it
 * is sent alone: a short task's start and result then cost one message and one write at the service, not two.
 */
const RUNNING_HOLD_MS = 20;
const HELLO_RETRY_MS = 500;
/**
 * With a window, credit freed by results is given back at once only while the forwarder holds less than this
 * share of the window; above it, with the next tick (TICK_MS). A single call's result then costs one message
 * to the service, not two (its credit message woke the service beside the result, issue 14); a stream of tasks
 * that uses the window gets its credit back at once.
 */
const CREDIT_AT_ONCE_BELOW = 0.5;
const RECENT_IDS = 100_000;

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
  private outstanding: number;
  /** Credit freed by results and not given back yet (CREDIT_AT_ONCE_BELOW). */
  private owed = 0;
  /** Tasks handed to the endpoint whose result was not sent yet. */
  private readonly held = new Set<string>();
  /** Task ids in unacknowledged batches. */
  private readonly pendingIds = new Set<string>();
  private readonly recent = new Set<string>();
  /** Function sources the forwarder sent (function-cache.ts). */
  readonly sources = new EndpointSourceCache();
  /** A `resync` hello is owed or unanswered. */
  private resyncPending = false;
  /** Messages with tasks naming a source this endpoint lacked (for tests). */
  resyncCount = 0;
  private readonly pending = new Map<number, Batch>();
  private readonly spool: ResultSpool;
  private outbox: ResultEnvelope[] = [];
  /** Tasks reported started, not told yet: the next result batch carries those it finishes, a timer the rest. */
  private started = new Set<string>();
  private startedTimer?: NodeJS.Timeout;
  private outboxWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  /** Batches not on disk yet, with the sendResults calls waiting for them (resolved by the ack or the write). */
  private readonly unsaved = new Map<Batch, Array<{ resolve: () => void; reject: (e: Error) => void }>>();
  private readonly spoolAfterMs: number;
  /** Every batch write so far (close() waits for them). */
  private writes: Promise<void> = Promise.resolve();
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
    this.outstanding = options.window ?? 0;
    this.spoolAfterMs = options.spoolAfterMs ?? RESULT_SPOOL_DEFAULTS.write_after_ms;
    this.spool = new ResultSpool(options.resultsDir, this.log);
    for (const batch of this.spool.load()) {
      this.pending.set(batch.seq, batch);
      for (const id of batch.ids) this.pendingIds.add(id);
    }
    if (this.pending.size > 0) this.log.info(`${this.pending.size} unacknowledged result batches to send again`);
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
    if (!Number.isInteger(n) || n <= 0) return;
    this.outstanding += n;
    this.send('tasks', { kind: 'credit', n });
  }

  /**
   * Hand results back: sent, and kept until the forwarder acks them; resolves once they are acked or on disk.
   * A batch goes to disk when it cannot be sent now, when it is not acked within `spoolAfterMs`, or at close.
   */
  sendResults(results: ResultEnvelope[]): Promise<void> {
    if (this.closed) return Promise.reject(new FuncxError('CLOSED', 'the forwarder client is closed'));
    if (results.length === 0) return Promise.resolve();
    for (const r of results) this.outbox.push(r);
    return new Promise((resolve, reject) => {
      // One file per event-loop turn, however many calls: many small results cost one write.
      if (this.outboxWaiters.push({ resolve, reject }) === 1) setImmediate(() => this.flush());
    });
  }

  /**
   * Tell the service these tasks started running (best effort): with their results when those come within
   * RUNNING_HOLD_MS, else in a `running` message then.
   */
  markRunning(ids: string[]): void {
    if (ids.length === 0 || this.closed) return;
    for (const id of ids) this.started.add(id);
    if (!this.startedTimer) {
      this.startedTimer = setTimeout(() => this.sendStarted(), RUNNING_HOLD_MS);
      this.startedTimer.unref();
    }
  }

  /** Send the starts no result batch carried. */
  private sendStarted(): void {
    this.startedTimer = undefined;
    if (this.started.size === 0) return;
    const ids = [...this.started];
    this.started = new Set();
    this.send('results', { kind: 'running', ids });
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Unacknowledged result batches (on disk). */
  get pendingBatches(): number {
    return this.pending.size;
  }

  /** Credit the forwarder still has from us. */
  get credit(): number {
    return this.outstanding;
  }

  private flush(): void {
    const results = this.outbox;
    const waiters = this.outboxWaiters;
    this.outbox = [];
    this.outboxWaiters = [];
    // The batch carries the starts of its own tasks not told yet (written with their results, one write).
    const running: string[] = [];
    if (this.started.size > 0) for (const r of results) if (this.started.delete(r.id)) running.push(r.id);
    const batch = this.spool.batch(results, running);
    this.pending.set(batch.seq, batch);
    this.unsaved.set(batch, waiters);
    let freed = 0;
    for (const id of batch.ids) {
      if (this.held.delete(id)) freed++;
      this.pendingIds.add(id);
    }
    if (this.welcomed.results) this.sendBatch(batch);
    // The disk copy is for a restart: a batch acked soon never needs one (tick() writes the others).
    if (!this.welcomed.results || this.spoolAfterMs === 0 || !this.life.is('open')) this.save(batch);
    if (this.options.window !== undefined && freed > 0) {
      this.owed += freed;
      if (this.outstanding < this.options.window * CREDIT_AT_ONCE_BELOW) this.grantOwed();
    }
  }

  private grantOwed(): void {
    const n = this.owed;
    this.owed = 0;
    this.grant(n);
  }

  /** Write a batch to disk; the calls waiting for it resolve then (or reject with RESULTS_NOT_SAVED). */
  private save(batch: Batch): void {
    const waiters = this.unsaved.get(batch);
    if (!waiters) return;
    this.unsaved.delete(batch);
    const saved = this.spool.persist(batch).then(
      () => waiters.forEach((w) => w.resolve()),
      (err: Error) => waiters.forEach((w) => w.reject(err)),
    );
    this.writes = this.writes.then(() => saved);
  }

  private sendBatch(batch: Batch): void {
    batch.sentAt = Date.now();
    this.send('results', batch.frame, () => (batch.sentAt = 0));
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
        if (channel === 'results') for (const batch of this.pending.values()) this.sendBatch(batch);
        if (channel === 'tasks') this.resyncPending = false;
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
      case 'tasks': {
        // Tasks that name their function get their full payload here (function-cache.ts); one naming a source
        // this endpoint lacks is dropped and sent again after a `resync` hello (its credit stays ours).
        const { ready, missing } = this.sources.expand(m);
        const isNew = (t: TaskEnvelope) => !this.held.has(t.id) && !this.pendingIds.has(t.id) && !this.recent.has(t.id);
        const lost = missing.filter(isNew);
        const fresh = ready.filter(isNew);
        this.outstanding = Math.max(0, this.outstanding - (m.tasks.length - lost.length));
        for (const t of fresh) this.held.add(t.id);
        // A duplicate took credit it does not need: give it back.
        const duplicates = m.tasks.length - lost.length - fresh.length;
        if (duplicates > 0) this.grant(duplicates);
        if (lost.length > 0) this.resync(lost.length);
        if (fresh.length > 0) this.emit('tasks', fresh);
        return;
      }
      case 'ack':
        return this.acked(m.seq);
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

  private acked(seq: number): void {
    const batch = this.pending.get(seq);
    if (!batch) return;
    this.pending.delete(seq);
    for (const id of batch.ids) {
      this.pendingIds.delete(id);
      this.recent.add(id);
    }
    // Remember recently finished ids a while, to drop a late redelivery of a task that is done.
    for (const id of this.recent) {
      if (this.recent.size <= RECENT_IDS) break;
      this.recent.delete(id);
    }
    // Stored by the service: whoever waits for these results is done, and no disk copy is needed.
    this.unsaved.get(batch)?.forEach((w) => w.resolve());
    this.unsaved.delete(batch);
    this.spool.remove(batch);
    this.emit('acked', batch.ids.length);
  }

  private sendHello(channel: ForwarderChannel): void {
    this.helloAt[channel] = Date.now();
    const hello: HelloMessage = { kind: 'hello', protocol: PROTOCOL_VERSION, endpointId: this.options.endpointId, channel, session: this.session };
    if (channel !== 'tasks') return this.send(channel, hello);
    this.send(channel, { ...hello, credit: this.outstanding, ...(this.resyncPending ? { resync: true } : {}) });
  }

  /** Tasks named a source this endpoint does not hold: ask the forwarder to start over (function-sources.ts). */
  private resync(dropped: number): void {
    this.resyncCount++;
    if (this.resyncPending) return;
    this.warn(`dropped ${dropped} tasks naming a function source this endpoint does not hold: asking the forwarder to send them again`);
    this.resyncPending = true;
    this.sendHello('tasks');
  }

  /** zeromq.js allows one send at a time per socket: chain them. A message that cannot go now is dropped. */
  private send(channel: ForwarderChannel, message: EndpointToForwarder[ForwarderChannel] | Buffer, onFail?: () => void): void {
    const socket = this.sockets[channel];
    if (!socket || this.closed) return onFail?.();
    const frame = Buffer.isBuffer(message) ? message : encode(message);
    this.chains[channel] = this.chains[channel].then(
      () => socket.send(frame).catch((err: Error & { code?: string }) => {
        onFail?.();
        if (err.code !== 'EAGAIN' && !this.closed) this.warn(`${channel}: send failed: ${err.message}`);
      }),
    );
  }

  private markDown(channel: ForwarderChannel): void {
    this.welcomed[channel] = false;
    if (!this.connected) return;
    this.connected = false;
    this.downSince = Date.now();
    this.reregisterAt = this.downSince + this.heartbeatThresholdMs;
  }

  private tick(): void {
    const now = Date.now();
    if (this.owed > 0) this.grantOwed();
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
      if (!this.welcomed[channel] || (channel === 'tasks' && this.resyncPending)) {
        if (now - this.helloAt[channel] >= HELLO_RETRY_MS) this.sendHello(channel);
      } else if (beat) this.send(channel, { kind: 'heartbeat' });
    }
    if (this.welcomed.results) {
      // A batch sent but not acked for a whole threshold (lost on a dropped connection): send it again.
      for (const batch of this.pending.values()) if (now - batch.sentAt > this.heartbeatThresholdMs) this.sendBatch(batch);
    }
    // Results not acked in time (the service is slow, or the link is down) go to disk for a restart.
    for (const batch of this.unsaved.keys()) if (!this.welcomed.results || now - batch.madeAt >= this.spoolAfterMs) this.save(batch);
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
      if (this.outboxWaiters.length > 0) await new Promise((r) => setImmediate(r));
      for (const batch of [...this.unsaved.keys()]) this.save(batch);
      await this.writes;
      this.life.to('closed');
      clearInterval(this.timer);
      clearTimeout(this.startedTimer);
      this.starting?.reject(new FuncxError('CLOSED', 'the forwarder client was closed while connecting'));
      for (const c of FORWARDER_CHANNELS) this.sockets[c]?.close();
    });
  }
}
