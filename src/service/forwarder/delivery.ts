/**
 * A forwarder's task delivery: the tasks table is the queue, and tasks are taken from it as the endpoint
 * grants credit, with each function's source sent once per connection. Its store work runs in the task
 * lane, one step at a time.
 */
import { encode } from '../../protocol/codec.js';
import type { ForwarderChannel } from '../../protocol/forwarder-messages.js';
import type { SocketWriter } from '../../protocol/socket-writer.js';
import type { Store } from '../store/index.js';
import { SerialLane } from '../serial-lane.js';
import { FunctionSources, prepareTasks, SentSources } from '../task-payloads.js';
import type { ResultIntake } from './results.js';

export interface TaskDeliveryOptions {
  endpointId: string;
  store: Store;
  /** Most tasks in one message (ForwarderOptions.batchSize, filled). */
  batchSize: number;
  /** The forwarder's peers (shared): tasks go to `peers.tasks`, and a delivery stops when it changes. */
  peers: Record<ForwarderChannel, Buffer | null>;
  /** The forwarder's writers (shared): tasks go out on `writers.tasks`. */
  writers: Record<ForwarderChannel, SocketWriter>;
  /** Where the tasks whose function is gone get their error result. */
  results: ResultIntake;
  warn: (m: string) => void;
}

export class TaskDelivery {
  /**
   * The tasks channel's store work (requeue on hello, deliveries) runs one step at a time, so a delivery
   * never sends tasks taken for one connection to another, nor races a requeue.
   */
  readonly lane = new SerialLane();
  /** Sources sent on the current tasks connection (reset with it): each goes once, not once per task. */
  readonly sentSources = new SentSources();
  private readonly sources: FunctionSources;
  private readonly peers: Record<ForwarderChannel, Buffer | null>;
  private readonly writers: Record<ForwarderChannel, SocketWriter>;
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
  private stopped = false;

  constructor(private readonly o: TaskDeliveryOptions) {
    this.peers = o.peers;
    this.writers = o.writers;
    this.sources = new FunctionSources(async (id) => (await o.store.function(id))?.source);
  }

  /** The function was deleted: tasks still queued for it fail at delivery. */
  forgetFunction(functionId: string): void {
    this.sources.forget(functionId);
  }

  /** New tasks were queued for this endpoint: deliver what the credit allows (coalesced per tick). */
  notify(): void {
    this.queuedGeneration++;
    this.schedule();
  }

  /** The endpoint gave back `n` credit: take more only if tasks may have been queued since the queue was empty. */
  credited(n: number): void {
    this.credit += n;
    if (this.queuedGeneration !== this.emptyAt) this.schedule();
  }

  /**
   * A new tasks connection (or a resync), in the task lane: forget the sources sent on the old one, and queue
   * again whatever was delivered on it without a result. Returns how many tasks were queued again.
   */
  async restart(): Promise<number> {
    this.sentSources.reset();
    // Whatever was delivered without a result may be lost with the old connection: send it again
    // (the endpoint drops ids it already holds), within the credit the endpoint says it has now.
    this.peers.tasks = null;
    const requeued = await this.o.store.requeueInFlight(this.o.endpointId);
    this.queuedGeneration++;
    return requeued;
  }

  /** The credit the endpoint says it has on its new connection. */
  setCredit(n: number): void {
    this.credit = n;
  }

  /** The endpoint went away: no credit, and the next connection is sent every source again. */
  disconnected(): void {
    this.credit = 0;
    this.sentSources.reset();
  }

  /** No delivery from now on (the forwarder is closing). */
  stop(): void {
    this.stopped = true;
  }

  /** Queue one delivery pass behind the tasks channel's store work, unless one is queued and not started yet. */
  private schedule(): void {
    if (this.deliveryScheduled || this.stopped) return;
    this.deliveryScheduled = true;
    void this.lane.run(async () => {
      this.deliveryScheduled = false;
      await this.deliver();
    }).catch((err) => this.o.warn(`tasks: delivery failed (the tasks stay queued): ${(err as Error).message}`));
  }

  /** Send what the credit allows. Runs only in the task lane. */
  async deliver(): Promise<void> {
    const batchSize = this.o.batchSize;
    for (;;) {
      const peer = this.peers.tasks;
      if (!peer || this.credit <= 0 || this.stopped) return;
      // Read before the take: the tasks of every notify up to it were committed before the take began.
      const generation = this.queuedGeneration;
      const asked = Math.min(this.credit, batchSize);
      const taken = await this.o.store.takeQueued(this.o.endpointId, asked);
      if (taken.length < asked) this.emptyAt = generation;
      if (taken.length === 0) return;
      const { messages, gone } = await prepareTasks(taken, this.sources, this.sentSources);
      if (gone.length > 0) await this.o.results.write(gone);
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
}
