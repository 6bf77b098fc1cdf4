/**
 * A task that runs a registered function is stored as its argument bytes only, and names its function by id:
 * the function's source is stored once (in the functions table), not once per task. The forwarder sends the
 * arguments and the function's id and source hash; the source itself goes to the endpoint once per connection
 * (function-sources.ts), and the endpoint builds the full payload.
 *
 * A stored payload is told apart by its first byte: `encodeArgs` gives zero bytes or V8's format (0xFF first),
 * a full task is a msgpack map (rows stored before this change, shell and MPI tasks).
 */
import { envelopeWith, type TaskEnvelope, type ResultEnvelope, type TasksMessage } from '../protocol/messages.js';
import { errorOutcome } from '../protocol/payload.js';
import { SENT_SOURCES_BUDGET, SOURCES_PER_MESSAGE, SizedLru, sourceHash } from '../protocol/function-sources.js';

/** Bytes `encodeArgs` may produce: nothing, or V8's serialization (version tag 0xFF first). */
export function isArgsOnly(bytes: Uint8Array): boolean {
  return bytes.length === 0 || bytes[0] === 0xff;
}

/** A function's source and its hash (function-sources.ts). */
export interface LoadedSource {
  source: string;
  hash: string;
}

/** Sources by function id, most recently used kept (a source may be 1M characters: keep few). */
export class FunctionSources {
  private readonly cache = new Map<string, LoadedSource>();

  constructor(
    private readonly load: (functionId: string) => Promise<string | undefined>,
    private readonly maxEntries = 64,
  ) {}

  async get(functionId: string): Promise<LoadedSource | undefined> {
    const cached = this.cache.get(functionId);
    if (cached !== undefined) {
      this.cache.delete(functionId);
      this.cache.set(functionId, cached);
      return cached;
    }
    const source = await this.load(functionId);
    if (source === undefined) return undefined;
    const loaded = { source, hash: sourceHash(source) };
    this.cache.set(functionId, loaded);
    if (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
    return loaded;
  }

  /** The function was deleted. */
  forget(functionId: string): void {
    this.cache.delete(functionId);
  }
}

/** The function sources the forwarder sent on the current connection: fn id → hash (function-sources.ts). */
export class SentSources {
  private readonly lru: SizedLru<{ hash: string; chars: number }>;
  /** Sources sent (and their characters) since the forwarder opened: for /metrics and tests. */
  sentCount = 0;
  sentChars = 0;

  constructor(budget = SENT_SOURCES_BUDGET) {
    this.lru = new SizedLru(budget, (v) => v.chars);
  }

  /** True when source `hash` of `fn` went on this connection (and touches it, as the endpoint will). */
  touch(fn: string, hash: string): boolean {
    return this.lru.get(fn)?.hash === hash;
  }

  /** The source goes in the message being built. */
  add(fn: string, loaded: LoadedSource): void {
    this.lru.set(fn, { hash: loaded.hash, chars: loaded.source.length });
    this.sentCount++;
    this.sentChars += loaded.source.length;
  }

  /** A new connection (or the endpoint asked to resync): nothing is known to be there. */
  reset(): void {
    this.lru.clear();
  }

  get size(): number {
    return this.lru.size;
  }
}

/**
 * Tasks taken from the queue, as tasks messages to send in order. A task running a registered function names
 * it (`fn`, `h`) and keeps its argument bytes; its source goes in the message's `functions` unless it was sent
 * on this connection already. A message stops taking new sources past SOURCES_PER_MESSAGE characters (the
 * next message carries them). Tasks whose function no longer exists come back as failed results
 * (FunctionNotFound) to store instead of delivering. Tasks that are not args-only (shell, MPI, old rows) pass
 * as they are.
 */
export async function prepareTasks(
  tasks: TaskEnvelope[],
  sources: FunctionSources,
  sent: SentSources,
): Promise<{ messages: TasksMessage[]; gone: ResultEnvelope[] }> {
  const messages: TasksMessage[] = [];
  const gone: ResultEnvelope[] = [];
  // Batches mostly run one function: look each up once, not once per task.
  const byId = new Map<string, LoadedSource | undefined>();
  let current: TasksMessage = { kind: 'tasks', tasks: [] };
  let carriedChars = 0;
  let lastFn: string | undefined;
  let lastHash: string | undefined;
  // Functions named in the current message: the endpoint sets a carried source at the FIRST task naming it
  // in a message and touches it at every later one, so a source to send again for a function named earlier in
  // this message (evicted since) starts a new message; else the two LRUs' orders drift apart and the endpoint
  // can lack a source the forwarder believes sent (a resync; a random run of 40 × 300 batches made 315).
  let named = new Set<string>();
  for (const t of tasks) {
    if (t.fn === undefined || !isArgsOnly(t.payload)) {
      current.tasks.push(t);
      continue;
    }
    let loaded = byId.get(t.fn);
    if (loaded === undefined && !byId.has(t.fn)) byId.set(t.fn, (loaded = await sources.get(t.fn)));
    if (loaded === undefined) {
      gone.push({ id: t.id, failed: true, payload: errorOutcome('FunctionNotFound', `function ${t.fn} of task ${t.id} was deleted before the task ran`) });
      continue;
    }
    // The same operations, in the same order, as the endpoint's replaySourceOps.
    // (A touch before a set leaves the same order as the set alone.)
    // Touching the entry touched last changes nothing (it is the most recent already): skip it.
    const known = (t.fn === lastFn && lastHash === loaded.hash) || sent.touch(t.fn, loaded.hash);
    lastFn = t.fn;
    lastHash = loaded.hash;
    if (!known) {
      if (named.has(t.fn) || (carriedChars > 0 && carriedChars + loaded.source.length > SOURCES_PER_MESSAGE)) {
        messages.push(current);
        current = { kind: 'tasks', tasks: [] };
        carriedChars = 0;
        named = new Set();
      }
      (current.functions ??= {})[t.fn] = { hash: loaded.hash, source: loaded.source };
      carriedChars += loaded.source.length;
      sent.add(t.fn, loaded);
    }
    named.add(t.fn);
    current.tasks.push(envelopeWith(t, t.payload, loaded.hash));
  }
  if (current.tasks.length > 0) messages.push(current);
  return { messages, gone };
}
