/**
 * Long-poll without polling: a request waiting for task results registers here, and the forwarder's
 * "results stored" event wakes it. Nothing runs on a timer except each waiter's own deadline.
 *
 * The forwarder passes what it just stored with the ids (`StoredOutcome`), so a woken request answers from
 * that instead of reading the tasks again. Ids woken without it (another replica's results, the re-read
 * after missed notifications) are read from the store by the request.
 */

/** A result as the forwarder stored it: what a re-read of the task would find. */
export interface StoredOutcome {
  failed: boolean;
  payload: Uint8Array;
  /** The task's updated_at (when the result was written). */
  at: number;
}

/** What a waiter keeps of a stored result: its size, and the bytes only if it asked for them. */
export interface KnownOutcome {
  failed: boolean;
  resultBytes: number;
  at: number;
  /** With `keepResults` (a one-task wait: bounded by the largest result), or within `keepResultBytes`. */
  result?: Buffer;
}

export interface Waiting {
  done: Promise<void>;
  cancel: () => void;
  /** Ids that finished while waiting, with their outcome when the notification carried it. */
  outcomes: Map<string, KnownOutcome>;
  /** These ids were found finished by the read after registering: no longer waited for. */
  settle: (ids: readonly string[]) => void;
}

interface Waiter {
  /** Ids still unfinished. */
  pending: Set<string>;
  mode: 'all' | 'any';
  /** Result bytes this waiter may still keep (Infinity with `keepResults`). */
  keepBytes: number;
  outcomes: Map<string, KnownOutcome>;
  finish: () => void;
}

/** Task `id` of waiter `w` finished (`o`: what was stored, when known). */
function wake(w: Waiter, id: string, o: StoredOutcome | undefined): void {
  if (!w.pending.delete(id)) return;
  if (o) {
    const known: KnownOutcome = { failed: o.failed, resultBytes: o.payload.length, at: o.at };
    if (o.payload.length <= w.keepBytes) {
      w.keepBytes -= o.payload.length;
      // Most payloads are Buffers already (msgpack bins): a view is made only for another Uint8Array.
      known.result = Buffer.isBuffer(o.payload) ? o.payload : Buffer.from(o.payload.buffer, o.payload.byteOffset, o.payload.byteLength);
    }
    w.outcomes.set(id, known);
  }
  if (w.mode === 'any' || w.pending.size === 0) w.finish();
}

export class ResultWaiters {
  /** The waiters of each task id: the one waiter itself (the usual case: no Set per id), or a Set of several. */
  private readonly byTask = new Map<string, Waiter | Set<Waiter>>();
  private readonly all = new Set<Waiter>();
  private closed = false;

  /** Long-polls waiting right now (for /metrics). */
  get open(): number {
    return this.all.size;
  }

  /** Results of these tasks were just stored; `outcome` tells what was stored, when the caller knows. */
  notify(taskIds: readonly string[], outcome?: (id: string) => StoredOutcome | undefined): void {
    for (const id of taskIds) {
      const waiters = this.byTask.get(id);
      if (!waiters) continue;
      const o = outcome?.(id);
      if (waiters instanceof Set) for (const w of [...waiters]) wake(w, id, o);
      else wake(waiters, id, o);
    }
  }

  /**
   * Resolve when all (or, with mode 'any', one) of `pendingIds` finished, the time is up, `cancel` is called
   * or the service closes. Register before reading the tasks' states, so that no result can be stored
   * unseen in between; then `settle` the ids the read found finished.
   */
  /**
   * `keepResults` keeps every stored result the wake carries (a one-task wait); `keepResultBytes` keeps them
   * while their bytes fit in that budget (so the answer need not read them again).
   */
  wait(pendingIds: readonly string[], mode: 'all' | 'any', timeoutMs: number, options: { keepResults?: boolean; keepResultBytes?: number } = {}): Waiting {
    const outcomes = new Map<string, KnownOutcome>();
    if (pendingIds.length === 0 || timeoutMs <= 0 || this.closed) return { done: Promise.resolve(), cancel: () => {}, outcomes, settle: () => {} };
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const waiter: Waiter = { pending: new Set(pendingIds), mode, keepBytes: options.keepResults === true ? Infinity : (options.keepResultBytes ?? 0), outcomes, finish: () => {} };
    const timer = setTimeout(() => waiter.finish(), timeoutMs);
    waiter.finish = () => {
      clearTimeout(timer);
      this.all.delete(waiter);
      for (const id of pendingIds) {
        const entry = this.byTask.get(id);
        if (entry === waiter) this.byTask.delete(id);
        else if (entry instanceof Set) {
          entry.delete(waiter);
          if (entry.size === 1) this.byTask.set(id, entry.values().next().value!);
          else if (entry.size === 0) this.byTask.delete(id);
        }
      }
      resolve();
    };
    this.all.add(waiter);
    for (const id of waiter.pending) {
      const entry = this.byTask.get(id);
      if (entry === undefined) this.byTask.set(id, waiter);
      else if (entry instanceof Set) entry.add(waiter);
      else if (entry !== waiter) this.byTask.set(id, new Set([entry, waiter]));
    }
    const settle = (ids: readonly string[]) => {
      let removed = false;
      for (const id of ids) removed = waiter.pending.delete(id) || removed;
      if (removed && (mode === 'any' || waiter.pending.size === 0)) waiter.finish();
    };
    return { done, cancel: () => waiter.finish(), outcomes, settle };
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
