/**
 * A task that runs a registered function is stored as its argument bytes only, and names its function by id:
 * the function's source is stored once (in the functions table), not once per task. The forwarder builds the
 * full task payload at delivery, from a small cache of sources by id (functions never change).
 *
 * A stored payload is told apart by its first byte: `encodeArgs` gives zero bytes or V8's format (0xFF first),
 * a full task is a msgpack map (rows stored before this change, shell and MPI tasks).
 */
import type { TaskEnvelope, ResultEnvelope } from '../protocol/messages.js';
import { encodeTask, errorOutcome } from '../protocol/payload.js';

/** Bytes `encodeArgs` may produce: nothing, or V8's serialization (version tag 0xFF first). */
export function isArgsOnly(bytes: Uint8Array): boolean {
  return bytes.length === 0 || bytes[0] === 0xff;
}

/** Sources by function id, most recently used kept (a source may be 1M characters: keep few). */
export class FunctionSources {
  private readonly cache = new Map<string, string>();

  constructor(
    private readonly load: (functionId: string) => Promise<string | undefined>,
    private readonly maxEntries = 64,
  ) {}

  async get(functionId: string): Promise<string | undefined> {
    const cached = this.cache.get(functionId);
    if (cached !== undefined) {
      this.cache.delete(functionId);
      this.cache.set(functionId, cached);
      return cached;
    }
    const source = await this.load(functionId);
    if (source === undefined) return undefined;
    this.cache.set(functionId, source);
    if (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
    return source;
  }

  /** The function was deleted. */
  forget(functionId: string): void {
    this.cache.delete(functionId);
  }
}

/**
 * Full payloads for tasks taken from the queue. Tasks whose function no longer exists come back as failed
 * results (FunctionNotFound) to store instead of delivering.
 */
export async function expandTasks(tasks: TaskEnvelope[], sources: FunctionSources): Promise<{ ready: TaskEnvelope[]; gone: ResultEnvelope[] }> {
  const ready: TaskEnvelope[] = [];
  const gone: ResultEnvelope[] = [];
  // Batches mostly run one function: look each up once, not once per task.
  const byId = new Map<string, string | undefined>();
  for (const t of tasks) {
    if (t.fn === undefined || !isArgsOnly(t.payload)) {
      ready.push(t);
      continue;
    }
    let source = byId.get(t.fn);
    if (source === undefined && !byId.has(t.fn)) byId.set(t.fn, (source = await sources.get(t.fn)));
    if (source === undefined) {
      gone.push({ id: t.id, failed: true, payload: errorOutcome('FunctionNotFound', `function ${t.fn} of task ${t.id} was deleted before the task ran`) });
      continue;
    }
    ready.push({ ...t, payload: encodeTask({ kind: 'js', functionId: t.fn, source, args: t.payload }) });
  }
  return { ready, gone };
}
