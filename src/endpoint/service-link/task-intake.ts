/**
 * The forwarder client's task intake: the credit this endpoint gives the forwarder (by `grant`, or by itself
 * with a window: credit freed by results goes back at once below half the window, else with the next tick),
 * tasks that come with their function's source expanded (function-cache.ts), tasks sent twice dropped, and
 * tasks naming a source this endpoint lacks dropped and asked for again with a `resync` hello.
 *
 * A redelivered task is recognised by its id: held here (handed to the endpoint, no result sent yet), in an
 * unacknowledged result batch (`pendingIds`) or acknowledged lately (`recent`). The last two sets are kept
 * here and moved along by the result sender (result-sender.ts), which makes and acks the batches.
 */
import type { EventEmitter } from 'node:events';
import type { EndpointToForwarder, ForwarderChannel, TasksMessage } from '../../protocol/forwarder-messages.js';
import type { TaskEnvelope } from '../../protocol/messages.js';
import { EndpointSourceCache } from './function-cache.js';
import type { ForwarderClientEvents } from './forwarder-client.js';

/**
 * With a window, credit freed by results is given back at once only while the forwarder holds less than this
 * share of the window; above it, with the next tick (TICK_MS). A single call's result then costs one message
 * to the service, not two (its credit message woke the service beside the result, issue 14); a stream of tasks
 * that uses the window gets its credit back at once.
 */
const CREDIT_AT_ONCE_BELOW = 0.5;

/** The client's chained send (forwarder-client.ts): a message that cannot go now is dropped, then `onFail`. */
export type ChannelSend = (channel: ForwarderChannel, message: EndpointToForwarder[ForwarderChannel] | Buffer, onFail?: () => void) => void;

export interface TaskIntakeOptions {
  /** ForwarderClientOptions.window: the credit granted at start, and kept outstanding by itself. */
  window: number | undefined;
  send: ChannelSend;
  /** Say hello again on the tasks channel (it carries the credit, and `resync` while one is pending). */
  helloTasks: () => void;
  /** The client: new tasks are emitted as its 'tasks' event. */
  events: EventEmitter<ForwarderClientEvents>;
  warn: (m: string) => void;
}

export class TaskIntake {
  /** Credit the forwarder still has from us. */
  outstanding: number;
  /** Credit freed by results and not given back yet (CREDIT_AT_ONCE_BELOW). */
  private owed = 0;
  /** Tasks handed to the endpoint whose result was not sent yet. */
  readonly held = new Set<string>();
  /** Task ids in unacknowledged batches (result-sender.ts adds and removes them). */
  readonly pendingIds = new Set<string>();
  /** Task ids acknowledged lately, to drop a late redelivery of a task that is done (result-sender.ts keeps it). */
  readonly recent = new Set<string>();
  /** Function sources the forwarder sent (function-cache.ts). */
  readonly sources = new EndpointSourceCache();
  /** A `resync` hello is owed or unanswered. */
  resyncPending = false;
  /** Messages with tasks naming a source this endpoint lacked (for tests). */
  resyncCount = 0;
  private readonly window: number | undefined;
  private readonly send: ChannelSend;
  private readonly helloTasks: () => void;
  private readonly events: EventEmitter<ForwarderClientEvents>;
  private readonly warn: (m: string) => void;

  constructor(o: TaskIntakeOptions) {
    this.window = o.window;
    this.outstanding = o.window ?? 0;
    this.send = o.send;
    this.helloTasks = o.helloTasks;
    this.events = o.events;
    this.warn = o.warn;
  }

  /** Accept `n` more tasks. */
  grant(n: number): void {
    if (!Number.isInteger(n) || n <= 0) return;
    this.outstanding += n;
    this.send('tasks', { kind: 'credit', n });
  }

  /** `n` held tasks got their result sent: with a window, their credit is owed back (at once when low). */
  freed(n: number): void {
    if (this.window === undefined) return;
    this.owed += n;
    if (this.outstanding < this.window * CREDIT_AT_ONCE_BELOW) this.grantOwed();
  }

  /** Give back the credit owed, if any (every tick). */
  payOwed(): void {
    if (this.owed > 0) this.grantOwed();
  }

  private grantOwed(): void {
    const n = this.owed;
    this.owed = 0;
    this.grant(n);
  }

  /** A tasks message: the new tasks are emitted, duplicates give their credit back, unknown sources resync. */
  take(m: TasksMessage): void {
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
    if (fresh.length > 0) this.events.emit('tasks', fresh);
  }

  /** Tasks named a source this endpoint does not hold: ask the forwarder to start over (function-sources.ts). */
  private resync(dropped: number): void {
    this.resyncCount++;
    if (this.resyncPending) return;
    this.warn(`dropped ${dropped} tasks naming a function source this endpoint does not hold: asking the forwarder to send them again`);
    this.resyncPending = true;
    this.helloTasks();
  }
}
