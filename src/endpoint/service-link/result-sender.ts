/**
 * The forwarder client's result sending: results are gathered into one batch per event-loop turn (with the
 * starts of its tasks not told yet), sent on the results channel and kept until the forwarder acks them; a
 * batch goes to disk (result-spool.ts) when it cannot be sent now, when it is not acked within `spoolAfterMs`,
 * or at close, and is sent again after a reconnect or a restart. Starts no result batch carried go alone in a
 * `running` message after RUNNING_HOLD_MS.
 */
import type { EventEmitter } from 'node:events';
import type { ResultEnvelope } from '../../protocol/messages.js';
import type { ForwarderChannel } from '../../protocol/forwarder-messages.js';
import type { Lifecycle } from '../../lifecycle.js';
import type { Logger } from '../../logger.js';
import { ResultSpool, type SpooledBatch as Batch } from './result-spool.js';
import type { ChannelSend, TaskIntake } from './task-intake.js';
import type { ForwarderClientEvents, ForwarderClientState } from './forwarder-client.js';

/**
 * How long a reported start waits for its task's result batch to carry it (`running` in that batch) before it
 * is sent alone: a short task's start and result then cost one message and one write at the service, not two.
 */
const RUNNING_HOLD_MS = 20;
const RECENT_IDS = 100_000;

type Waiter = { resolve: () => void; reject: (e: Error) => void };

export interface ResultSenderOptions {
  /** Unacknowledged result batches live here (ForwarderClientOptions.resultsDir). */
  resultsDir: string;
  /** ForwarderClientOptions.spoolAfterMs, filled. */
  spoolAfterMs: number;
  send: ChannelSend;
  /** The client's channels welcomed now (shared, kept by the client): batches go out while `results` is. */
  welcomed: Readonly<Record<ForwarderChannel, boolean>>;
  /** The client's lifecycle: batches made while not open go to disk at once; nothing is taken once closed. */
  life: Lifecycle<ForwarderClientState>;
  /** The task intake: ids move from its `held` to `pendingIds` to `recent`; freed credit goes back to it. */
  tasks: TaskIntake;
  /** The client: acks are emitted as its 'acked' event. */
  events: EventEmitter<ForwarderClientEvents>;
  log: Logger;
}

export class ResultSender {
  readonly spool: ResultSpool;
  private readonly pending = new Map<number, Batch>();
  private outbox: ResultEnvelope[] = [];
  /** Tasks reported started, not told yet: the next result batch carries those it finishes, a timer the rest. */
  private started = new Set<string>();
  private startedTimer?: NodeJS.Timeout;
  private outboxWaiters: Waiter[] = [];
  /** Batches not on disk yet, with the sendResults calls waiting for them (resolved by the ack or the write). */
  private readonly unsaved = new Map<Batch, Waiter[]>();
  private readonly spoolAfterMs: number;
  /** Every batch write so far (close waits for them). */
  private writes: Promise<void> = Promise.resolve();
  private readonly send: ChannelSend;
  private readonly welcomed: Readonly<Record<ForwarderChannel, boolean>>;
  private readonly life: Lifecycle<ForwarderClientState>;
  private readonly tasks: TaskIntake;
  private readonly held: Set<string>;
  private readonly pendingIds: Set<string>;
  private readonly recent: Set<string>;
  private readonly events: EventEmitter<ForwarderClientEvents>;

  constructor(o: ResultSenderOptions) {
    this.spoolAfterMs = o.spoolAfterMs;
    this.send = o.send;
    this.welcomed = o.welcomed;
    this.life = o.life;
    this.tasks = o.tasks;
    this.held = o.tasks.held;
    this.pendingIds = o.tasks.pendingIds;
    this.recent = o.tasks.recent;
    this.events = o.events;
    this.spool = new ResultSpool(o.resultsDir, o.log);
    for (const batch of this.spool.load()) {
      this.pending.set(batch.seq, batch);
      for (const id of batch.ids) this.pendingIds.add(id);
    }
    if (this.pending.size > 0) o.log.info(`${this.pending.size} unacknowledged result batches to send again`);
  }

  /** Unacknowledged result batches. */
  get pendingBatches(): number {
    return this.pending.size;
  }

  /** ForwarderClient.sendResults: resolves once the results are acked or on disk. */
  sendResults(results: ResultEnvelope[]): Promise<void> {
    for (const r of results) this.outbox.push(r);
    return new Promise((resolve, reject) => {
      // One file per event-loop turn, however many calls: many small results cost one write.
      if (this.outboxWaiters.push({ resolve, reject }) === 1) setImmediate(() => this.flush());
    });
  }

  /** ForwarderClient.markRunning: with their results when those come within RUNNING_HOLD_MS, else alone then. */
  markRunning(ids: string[]): void {
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
    if (freed > 0) this.tasks.freed(freed);
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

  /** The results channel was welcomed: every unacknowledged batch goes again. */
  sendAll(): void {
    for (const batch of this.pending.values()) this.sendBatch(batch);
  }

  /** The forwarder stored batch `seq`: done with it. */
  acked(seq: number): void {
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
    this.events.emit('acked', batch.ids.length);
  }

  /** The client's tick: batches lost on a dropped connection go again, batches not acked in time to disk. */
  tick(now: number, heartbeatThresholdMs: number): void {
    if (this.welcomed.results) {
      // A batch sent but not acked for a whole threshold (lost on a dropped connection): send it again.
      for (const batch of this.pending.values()) if (now - batch.sentAt > heartbeatThresholdMs) this.sendBatch(batch);
    }
    // Results not acked in time (the service is slow, or the link is down) go to disk for a restart.
    for (const batch of this.unsaved.keys()) if (!this.welcomed.results || now - batch.madeAt >= this.spoolAfterMs) this.save(batch);
  }

  /** Closing: results handed over this turn make their batch, then every batch not on disk is written. */
  async saveAll(): Promise<void> {
    if (this.outboxWaiters.length > 0) await new Promise((r) => setImmediate(r));
    for (const batch of [...this.unsaved.keys()]) this.save(batch);
    await this.writes;
  }

  /** Closed: the starts not told yet are not sent. */
  close(): void {
    clearTimeout(this.startedTimer);
  }
}
