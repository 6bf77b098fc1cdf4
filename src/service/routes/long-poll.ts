/**
 * Long-poll without polling: a request waiting for task results registers here, and the forwarder's
 * "results stored" event wakes it. Nothing runs on a timer except each waiter's own deadline.
 */

interface Waiter {
  /** Ids still unfinished. */
  pending: Set<string>;
  mode: 'all' | 'any';
  finish: () => void;
}

export class ResultWaiters {
  private readonly byTask = new Map<string, Set<Waiter>>();
  private readonly all = new Set<Waiter>();
  private closed = false;

  /** Long-polls waiting right now (for /metrics). */
  get open(): number {
    return this.all.size;
  }

  /** Results of these tasks were just stored. */
  notify(taskIds: readonly string[]): void {
    for (const id of taskIds) {
      const waiters = this.byTask.get(id);
      if (!waiters) continue;
      for (const w of [...waiters]) {
        w.pending.delete(id);
        if (w.mode === 'any' || w.pending.size === 0) w.finish();
      }
    }
  }

  /**
   * Resolve when all (or, with mode 'any', one) of `pendingIds` finished, the time is up, `cancel` is called
   * or the service closes. Register synchronously right after reading the tasks' states, so that no
   * result can be stored in between.
   */
  wait(pendingIds: readonly string[], mode: 'all' | 'any', timeoutMs: number): { done: Promise<void>; cancel: () => void } {
    if (pendingIds.length === 0 || timeoutMs <= 0 || this.closed) return { done: Promise.resolve(), cancel: () => {} };
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const waiter: Waiter = { pending: new Set(pendingIds), mode, finish: () => {} };
    const timer = setTimeout(() => waiter.finish(), timeoutMs);
    waiter.finish = () => {
      clearTimeout(timer);
      this.all.delete(waiter);
      for (const id of pendingIds) {
        const set = this.byTask.get(id);
        if (!set) continue;
        set.delete(waiter);
        if (set.size === 0) this.byTask.delete(id);
      }
      resolve();
    };
    this.all.add(waiter);
    for (const id of waiter.pending) {
      let set = this.byTask.get(id);
      if (!set) this.byTask.set(id, (set = new Set()));
      set.add(waiter);
    }
    return { done, cancel: () => waiter.finish() };
  }

  /** Every task id some request waits for (to re-read them after missed notifications). */
  pendingIds(): string[] {
    return [...this.byTask.keys()];
  }

  /** How many requests are waiting (for tests and status). */
  get size(): number {
    return this.all.size;
  }

  /** Answer every waiting request now, and every later one at once (service shutdown). */
  releaseAll(): void {
    this.closed = true;
    for (const w of [...this.all]) w.finish();
  }
}
