/**
 * The manager's queue of tasks not yet given to a worker, one FIFO per user: tasks of the endpoint's owner
 * (no `u` header) in the default queue "", every other user's tasks in their own. Workers take only from
 * their own user's queue (worker-pool.ts), so functions of different users never share a process.
 */
import type { TaskEnvelope } from '../protocol/messages.js';

/** The owner's queue (tasks without a `u` header). */
export const OWNER = '';

class Fifo {
  items: TaskEnvelope[] = [];
  head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  take(max: number): TaskEnvelope[] {
    const end = Math.min(this.items.length, this.head + max);
    const tasks = this.items.slice(this.head, end);
    this.head = end;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    }
    return tasks;
  }
}

export class UserQueues {
  private readonly owner = new Fifo();
  private readonly others = new Map<string, Fifo>();
  private total = 0;

  /** Tasks queued, all users. */
  get size(): number {
    return this.total;
  }

  push(t: TaskEnvelope): void {
    this.fifo(t.u ?? OWNER, true)!.items.push(t);
    this.total++;
  }

  /** Tasks a lost worker had not started go back to the front of their user's queue, in order. */
  unshift(tasks: TaskEnvelope[]): void {
    for (let i = tasks.length - 1; i >= 0; i--) {
      const q = this.fifo(tasks[i].u ?? OWNER, true)!;
      if (q.head > 0) q.items[--q.head] = tasks[i];
      else q.items.unshift(tasks[i]);
      this.total++;
    }
  }

  take(user: string, max: number): TaskEnvelope[] {
    const q = this.fifo(user, false);
    if (!q || q.length === 0) return [];
    const tasks = q.take(max);
    this.total -= tasks.length;
    if (user !== OWNER && q.length === 0) this.others.delete(user);
    return tasks;
  }

  pending(user: string): number {
    return this.fifo(user, false)?.length ?? 0;
  }

  /** Users with queued tasks (the owner first). */
  *waiting(): Iterable<string> {
    if (this.owner.length > 0) yield OWNER;
    yield* this.others.keys();
  }

  private fifo(user: string, create: boolean): Fifo | undefined {
    if (user === OWNER) return this.owner;
    let q = this.others.get(user);
    if (!q && create) this.others.set(user, (q = new Fifo()));
    return q;
  }
}
