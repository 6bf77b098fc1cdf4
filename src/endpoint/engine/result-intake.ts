/**
 * The interchange's result intake: how a task held by a manager comes back. Its result arrives (routed to
 * its `submit` promise or, in batches, to `onResults`, without decoding the payload; its duration folded into
 * its function's estimate), or its manager is gone and it is retried (bounded by maxRetries) or fails with
 * ManagerLost naming the manager and its block.
 *
 * The backlog, the tasks held and the estimates are the interchange's (interchange.ts), shared with this and
 * with dispatch (dispatch.ts).
 */
import type { ResultEnvelope } from '../../protocol/messages.js';
import { errorOutcome } from '../../protocol/payload.js';
import type { Logger } from '../../logger.js';
import type { TaskQueue } from './task-queue.js';
import type { ManagerRecord } from './manager-registry.js';
import type { Dispatcher, TaskRecord } from './dispatch.js';

/** The interchange as the intake sees it: the hook told of results of `submitMany` tasks (callers set it at any time). */
export interface ResultHost {
  readonly onResults: (results: ResultEnvelope[]) => void;
}

export interface ResultIntakeOptions {
  host: ResultHost;
  /** The backlog (shared): retried tasks go back to its front. */
  queue: TaskQueue<TaskRecord>;
  /** Every task held, by id (shared). */
  tasks: Map<string, TaskRecord>;
  /** Per-function duration estimates (ms), learned here (shared with dispatch). */
  estimates: Map<string, number>;
  dispatcher: Dispatcher;
  /** Times a task is retried after its manager was lost (InterchangeOptions.maxRetries). */
  maxRetries: number;
  log: Logger;
  warnPeer: (m: string) => void;
}

export class ResultIntake {
  private readonly host: ResultHost;
  private readonly queue: TaskQueue<TaskRecord>;
  private readonly tasks: Map<string, TaskRecord>;
  private readonly estimates: Map<string, number>;
  private readonly dispatcher: Dispatcher;
  private readonly maxRetries: number;
  private readonly log: Logger;
  private readonly warnPeer: (m: string) => void;

  constructor(o: ResultIntakeOptions) {
    this.host = o.host;
    this.queue = o.queue;
    this.tasks = o.tasks;
    this.estimates = o.estimates;
    this.dispatcher = o.dispatcher;
    this.maxRetries = o.maxRetries;
    this.log = o.log;
    this.warnPeer = o.warnPeer;
  }

  /** A manager's results message: each result goes to whoever waits for it, and freed credit is used. */
  onManagerResults(m: ManagerRecord, results: ResultEnvelope[], capacity: number | undefined): void {
    if (capacity !== undefined) m.capacity = capacity;
    let stream: ResultEnvelope[] | undefined;
    // Durations are folded into the per-function estimate once per run of same-function results, not per
    // task: a batch of 512 no-ops costs one Map write, not 512.
    let fn: string | undefined;
    let msSum = 0;
    let msCount = 0;
    for (const r of results) {
      const rec = this.tasks.get(r.id);
      if (rec === undefined || rec.manager !== m) {
        this.warnPeer(`dropped a result for task ${r.id} from manager ${m.id}, which does not hold it`);
        continue;
      }
      this.tasks.delete(r.id);
      m.outstanding--;
      if (r.ms !== undefined && rec.env.fn !== undefined) {
        if (rec.env.fn !== fn) {
          this.learnDuration(fn, msSum, msCount);
          fn = rec.env.fn;
          msSum = 0;
          msCount = 0;
        }
        msSum += r.ms;
        msCount++;
      }
      if (rec.resolve) rec.resolve(r);
      else (stream ??= []).push(r);
    }
    this.learnDuration(fn, msSum, msCount);
    if (m.outstanding === 0) m.idleSince = Date.now();
    if (stream) this.host.onResults(stream);
    this.dispatcher.schedule();
  }

  /** The largest per-function estimate (ms), for the strategy's sizing; undefined before any result. */
  typicalEstimateMs(): number | undefined {
    let max: number | undefined;
    for (const v of this.estimates.values()) max = max === undefined ? v : Math.max(max, v);
    return max;
  }

  /** Fold the mean of `count` durations of `fn` into its estimate (a moving average). */
  private learnDuration(fn: string | undefined, sum: number, count: number): void {
    if (fn === undefined || count === 0) return;
    const mean = sum / count;
    const prev = this.estimates.get(fn);
    this.estimates.set(fn, prev === undefined ? mean : prev * 0.8 + mean * 0.2);
  }

  /**
   * Manager `m` is gone (`lost`: declared lost, not said bye) because it `reason`: its tasks are queued again
   * first, or fail with ManagerLost once tried more than maxRetries times; logged with the counts.
   */
  reclaim(m: ManagerRecord, reason: string, lost: boolean): void {
    const retry: TaskRecord[] = [];
    const failed: Array<[TaskRecord, ResultEnvelope]> = [];
    if (m.outstanding > 0) {
      for (const rec of this.tasks.values()) {
        if (rec.manager !== m) continue;
        rec.manager = null;
        if (++rec.attempts > this.maxRetries) {
          this.tasks.delete(rec.env.id);
          const message = `task ${rec.env.id} was lost with manager ${m.id} (block ${m.blockId || '-'}, host ${m.hostname}, node ${m.node}), which ${reason}; tried ${rec.attempts} times`;
          failed.push([rec, { id: rec.env.id, failed: true, payload: errorOutcome('ManagerLost', message) }]);
        } else {
          retry.push(rec);
        }
      }
    }
    const level = m.outstanding > 0 || lost ? 'warn' : 'info';
    this.log[level](`manager ${m.id} (block ${m.blockId || '-'}) ${reason}; ${retry.length} tasks retried, ${failed.length} failed`);
    m.outstanding = 0;
    this.queue.unshiftAll(retry);
    const stream: ResultEnvelope[] = [];
    for (const [rec, result] of failed) {
      if (rec.resolve) rec.resolve(result);
      else stream.push(result);
    }
    if (stream.length) this.host.onResults(stream);
  }
}
