/**
 * A function's source travels to an endpoint once per connection, not once per task (issue 11): the
 * forwarder remembers which sources it sent on the current connection (SentSources), the endpoint keeps the
 * sources it got (EndpointSourceCache in endpoint/service-link/function-cache.ts), and a task names its
 * function by id and source hash (`fn`, `h`) and carries its argument bytes only.
 *
 * Invariant (why a task never names a source the endpoint dropped, short of a lost message):
 * both sides keep a `SizedLru` sized in source characters, and both replay the same operations in the same
 * order, message by message (`replaySourceOps`): for each task naming a source, in task order, `set` when the
 * message carries that function's source and it was not set yet in this message, else `get` (a touch).
 * Such an LRU (new or touched entries at the head, evictions from the tail only) always holds the longest
 * most-recently-used prefix of the keys that fits its budget, so with the endpoint's budget at least the
 * forwarder's (SENT_SOURCES_BUDGET ≤ ENDPOINT_SOURCES_BUDGET), everything the forwarder believes sent is
 * still at the endpoint. The forwarder forgets everything when the connection changes (a new connection, a
 * restart on either side, or the endpoint's `resync`), and an empty set is included in anything.
 * A divergence can come only from a tasks message lost on a live connection: the endpoint then drops the
 * tasks naming a source it lacks and says hello with `resync`; the forwarder requeues every task without a
 * result and sends sources again (tasks are never failed for a missing source).
 */
import { createHash } from 'node:crypto';

/** Characters of source the forwarder remembers as sent per connection. */
export const SENT_SOURCES_BUDGET = 32 * 1024 * 1024;
/** Characters of source the endpoint keeps (at least SENT_SOURCES_BUDGET: see the invariant above). */
export const ENDPOINT_SOURCES_BUDGET = 64 * 1024 * 1024;
/** Characters of new sources in one tasks message before the forwarder starts another message. */
export const SOURCES_PER_MESSAGE = 8 * 1024 * 1024;

/** First 16 hex digits of the source's SHA-256: tells two versions of a function id apart. */
export function sourceHash(source: string): string {
  return createHash('sha256').update(source).digest('hex').slice(0, 16);
}

/** Least recently used entries evicted while the total size is over the budget (the newest entry always stays). */
export class SizedLru<V> {
  private readonly entries = new Map<string, { value: V; size: number }>();
  private total = 0;

  constructor(
    readonly budget: number,
    private readonly sizeOf: (v: V) => number,
  ) {}

  /** The value, made most recently used. */
  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  /** The value, without touching it. */
  peek(key: string): V | undefined {
    return this.entries.get(key)?.value;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  set(key: string, value: V): void {
    const old = this.entries.get(key);
    if (old) {
      this.total -= old.size;
      this.entries.delete(key);
    }
    const size = this.sizeOf(value);
    this.entries.set(key, { value, size });
    this.total += size;
    for (const [k, e] of this.entries) {
      if (this.total <= this.budget || this.entries.size === 1) break;
      this.entries.delete(k);
      this.total -= e.size;
    }
  }

  delete(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.total -= e.size;
  }

  clear(): void {
    this.entries.clear();
    this.total = 0;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Sum of the entries' sizes. */
  get bytes(): number {
    return this.total;
  }

  keys(): IterableIterator<string> {
    return this.entries.keys();
  }
}

/**
 * The operations both sides apply for one tasks message, in order (see the invariant above): `onSet` for the
 * first task naming a function whose source the message carries, `onGet` for every other task naming one.
 */
export function replaySourceOps(
  tasks: ReadonlyArray<{ fn?: string; h?: string }>,
  carried: Readonly<Record<string, unknown>> | undefined,
  onSet: (fn: string) => void,
  onGet: (fn: string, hash: string, index: number) => void,
): void {
  const setHere = new Set<string>();
  for (let i = 0; i < tasks.length; i++) {
    const { fn, h } = tasks[i];
    if (fn === undefined || h === undefined) continue;
    if (carried && Object.hasOwn(carried, fn) && !setHere.has(fn)) {
      setHere.add(fn);
      onSet(fn);
    } else {
      onGet(fn, h, i);
    }
  }
}
