/**
 * The interchange's dispatch: the backlog goes out in batches to the managers with free credit (a share of
 * the backlog each, starting with another manager every round), never a task to a manager whose block's
 * walltime would end before the task, and with each big function source sent once per manager registration
 * (protocol/source-link.ts). Tasks a manager lacked the source of come back here and go first.
 *
 * The backlog, the tasks held and the duration estimates belong to the interchange (interchange.ts), which
 * shares them with this and with the result intake (result-intake.ts).
 */
import { encode } from '../../protocol/codec.js';
import type { ResultEnvelope, TaskEnvelope } from '../../protocol/messages.js';
import type { SocketWriter } from '../../protocol/socket-writer.js';
import { SourceSender } from '../../protocol/source-link.js';
import type { TaskQueue } from './task-queue.js';
import type { ManagerRecord, ManagerRegistry } from './manager-registry.js';
import type { InterchangeState } from './interchange.js';

/** A task the interchange holds, from its submission to its result (queued while `manager` is null). */
export interface TaskRecord {
  env: TaskEnvelope;
  attempts: number;
  manager: ManagerRecord | null;
  resolve?: (result: ResultEnvelope) => void;
}

/** The interchange as dispatch sees it: its state, and the hook told of every batch sent (callers set it at any time). */
export interface DispatchHost {
  readonly state: InterchangeState;
  readonly onDispatched: ((tasks: TaskEnvelope[]) => void) | null;
}

export interface DispatchOptions {
  host: DispatchHost;
  /** The backlog (shared with the interchange and the result intake). */
  queue: TaskQueue<TaskRecord>;
  /** Every task held, queued or running, by id (shared). */
  tasks: Map<string, TaskRecord>;
  registry: ManagerRegistry;
  /** Per-function duration estimates (ms), learned by the result intake (shared). */
  estimates: Map<string, number>;
  /** The router's writer: tasks go to `[manager identity, message]`. */
  writer: SocketWriter;
  /** InterchangeOptions.walltimeMarginMs. */
  walltimeMarginMs: number;
  warnPeer: (m: string) => void;
}

export class Dispatcher {
  private readonly host: DispatchHost;
  private readonly queue: TaskQueue<TaskRecord>;
  private readonly tasks: Map<string, TaskRecord>;
  private readonly registry: ManagerRegistry;
  private readonly estimates: Map<string, number>;
  private readonly writer: SocketWriter;
  private readonly walltimeMarginMs: number;
  private readonly warnPeer: (m: string) => void;
  private dispatchScheduled = false;
  private rotate = 0;
  /** Function sources sent to each manager since it registered (protocol/source-link.ts). */
  private readonly sentSources = new WeakMap<ManagerRecord, SourceSender>();

  constructor(o: DispatchOptions) {
    this.host = o.host;
    this.queue = o.queue;
    this.tasks = o.tasks;
    this.registry = o.registry;
    this.estimates = o.estimates;
    this.writer = o.writer;
    this.walltimeMarginMs = o.walltimeMarginMs;
    this.warnPeer = o.warnPeer;
  }

  /** Dispatch on the next turn of the event loop (once, however many calls), if anything is queued. */
  schedule(): void {
    if (!this.dispatchScheduled && this.queue.length > 0) {
      this.dispatchScheduled = true;
      setImmediate(this.dispatch);
    }
  }

  private dispatch = (): void => {
    this.dispatchScheduled = false;
    if (this.host.state !== 'running' || this.queue.length === 0) return;
    const now = Date.now();
    const eligible = this.registry.withCredit(now, this.walltimeMarginMs);
    if (eligible.length === 0) return;
    const start = this.rotate++ % eligible.length;
    let remainingManagers = eligible.length;
    for (let i = 0; i < eligible.length && this.queue.length > 0; i++, remainingManagers--) {
      const m = eligible[(start + i) % eligible.length];
      const share = Math.ceil(this.queue.length / remainingManagers);
      const n = Math.min(m.capacity - m.outstanding, share);
      const batch: TaskEnvelope[] = [];
      const unfit: TaskRecord[] = [];
      const leftMs = m.endsAt === null ? Infinity : m.endsAt - now;
      while (batch.length < n) {
        const rec = this.queue.shift();
        if (rec === undefined) break;
        if (leftMs !== Infinity && !this.fits(rec, leftMs)) {
          unfit.push(rec);
          continue;
        }
        rec.manager = m;
        batch.push(rec.env);
      }
      this.queue.unshiftAll(unfit);
      if (batch.length === 0) continue;
      m.outstanding += batch.length;
      m.idleSince = null;
      this.sendTasks(m, batch);
      this.host.onDispatched?.(batch);
    }
  };

  /** The batch as tasks messages: big sources go once per manager registration (protocol/source-link.ts). */
  private sendTasks(m: ManagerRecord, batch: TaskEnvelope[]): void {
    let sent = this.sentSources.get(m);
    if (sent === undefined) this.sentSources.set(m, (sent = new SourceSender()));
    for (const message of sent.messages(batch)) this.writer.send([m.identity, encode(message)]);
  }

  /**
   * The manager lacked the source of these tasks (a tasks message was lost on a live link): forget what it
   * was sent, and queue the tasks it still holds again (first, not as a retry: they never ran).
   */
  onMissing(m: ManagerRecord, ids: string[]): void {
    this.sentSources.get(m)?.reset();
    const again: TaskRecord[] = [];
    for (const id of ids) {
      const rec = this.tasks.get(id);
      if (rec === undefined || rec.manager !== m) continue;
      rec.manager = null;
      m.outstanding--;
      again.push(rec);
    }
    this.warnPeer(`manager ${m.id} lacked the source of ${ids.length} tasks; ${again.length} queued again, sources sent again`);
    this.queue.unshiftAll(again);
    if (m.outstanding === 0) m.idleSince = Date.now();
    this.schedule();
  }

  /** Whether a task is expected to finish in the walltime a manager has left. */
  private fits(rec: TaskRecord, leftMs: number): boolean {
    const estimate = rec.env.fn === undefined ? undefined : this.estimates.get(rec.env.fn);
    const needed = estimate === undefined ? this.walltimeMarginMs : Math.max(estimate * 1.5, 1000);
    return leftMs > needed;
  }
}
