/**
 * The endpoint's copy of the function sources the forwarder sent (function-sources.ts has the protocol and
 * its invariant): kept by function id and hash in an LRU bounded by characters (ENDPOINT_SOURCES_BUDGET), and
 * used to turn each task that names its function (`fn`, `h`, arguments only) into a task whose payload is the
 * full one the interchange, manager and worker know (encodeTask, built when read), before the task leaves the
 * forwarder client.
 */
import type { FunctionSource, TaskEnvelope, TasksMessage } from '../../protocol/messages.js';
import { encodeJsTask } from '../../protocol/payload.js';
import { ENDPOINT_SOURCES_BUDGET, SizedLru, replaySourceOps } from '../../protocol/function-sources.js';
import { TASK_SOURCE } from '../../protocol/task-source.js';

/** Sources up to this many characters are copied into each task's payload at once (20,000 tasks: 80 Mi at most). */
const EAGER_SOURCE_CHARS = 4096;

/**
 * The task with its full payload built when read, not kept: a queue of 20,000 tasks naming one 1 MiB function
 * holds the source once, not 20,000 copies of it. Such a task also holds its source (TASK_SOURCE), so the
 * interchange sends it to a manager by `h` and arguments, the source once per manager (protocol/source-link.ts);
 * the full payload is only built by readers that decode it (MPI admission).
 */
function lazyTask(t: TaskEnvelope, functionId: string, f: FunctionSource, args: Uint8Array): TaskEnvelope {
  const { h: _h, payload: _p, ...rest } = t;
  const source = f.source;
  // Small sources are built at once: a plain object encodes several times faster than one with a getter.
  if (source.length <= EAGER_SOURCE_CHARS) return { ...rest, payload: encodeJsTask(functionId, source, args) };
  (rest as { [TASK_SOURCE]?: unknown })[TASK_SOURCE] = { hash: f.hash, source, args };
  return Object.defineProperty(rest, 'payload', {
    enumerable: true,
    get: () => encodeJsTask(functionId, source, args),
  }) as TaskEnvelope;
}

export class EndpointSourceCache {
  private readonly lru: SizedLru<FunctionSource>;

  constructor(budget = ENDPOINT_SOURCES_BUDGET) {
    this.lru = new SizedLru(budget, (v) => v.source.length);
  }

  /**
   * The tasks of one message with full payloads, and those naming a source this endpoint does not hold (to
   * drop and have sent again: the caller says hello with `resync`). Replays the forwarder's cache operations
   * for every task of the message, duplicates included, so both sides stay in step.
   */
  expand(m: Pick<TasksMessage, 'tasks' | 'functions'>): { ready: TaskEnvelope[]; missing: TaskEnvelope[] } {
    const carried = m.functions;
    const found: Array<FunctionSource | undefined> = new Array(m.tasks.length);
    replaySourceOps(
      m.tasks,
      carried,
      (fn) => this.lru.set(fn, carried![fn]),
      (fn, _hash, i) => (found[i] = this.lru.get(fn)),
    );
    const ready: TaskEnvelope[] = [];
    const missing: TaskEnvelope[] = [];
    for (let i = 0; i < m.tasks.length; i++) {
      const t = m.tasks[i];
      if (t.fn === undefined || t.h === undefined) {
        ready.push(t);
        continue;
      }
      // The message's own copy first: it is there even if the cache could not keep it.
      const f = carried && Object.hasOwn(carried, t.fn) ? carried[t.fn] : found[i];
      if (f?.hash !== t.h) {
        missing.push(t);
        continue;
      }
      ready.push(lazyTask(t, t.fn, f, t.payload));
    }
    return { ready, missing };
  }

  /** Whether source `hash` of `fn` is held (without touching it: the order changes only as the forwarder's does). */
  has(fn: string, hash: string): boolean {
    return this.lru.peek(fn)?.hash === hash;
  }

  /** Forget every source (tests use it to stand for a lost tasks message: the next task naming one resyncs). */
  clear(): void {
    this.lru.clear();
  }

  /** Sources held and their characters (for tests and status). */
  get size(): number {
    return this.lru.size;
  }

  get chars(): number {
    return this.lru.bytes;
  }
}
