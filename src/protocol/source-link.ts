/**
 * Function sources sent once per link inside the engine (issue 11): interchange → manager (once per manager
 * registration) and manager → worker process (once per process). The scheme and its invariant are the
 * forwarder ↔ endpoint one (function-sources.ts): the sender keeps a SizedLru of what it sent (fn → hash),
 * the receiver a SizedLru of the sources with at least the sender's budget, and both apply the same
 * operations in the same order (`replaySourceOps`), so everything the sender believes sent is still held.
 *
 * Only tasks holding their source in memory (TASK_SOURCE: sources over the endpoint's eager size) travel this
 * way; every other task (small sources inline, shell, MPI) passes as it is, and a batch without one costs a
 * single scan. A receiver that lacks a source (a message lost on a live link) reports the task as missing:
 * the manager hands such tasks back to the interchange (`missing`), which forgets what it sent that manager
 * and queues them again — a task is never failed for a missing source.
 */
import type { FunctionSource, TaskEnvelope, TasksMessage } from './messages.js';
import { ENDPOINT_SOURCES_BUDGET, SENT_SOURCES_BUDGET, SOURCES_PER_MESSAGE, SizedLru, replaySourceOps } from './function-sources.js';
import { TASK_SOURCE, compactTask, type SourcedTask } from './task-source.js';

/** What one link's sender sent since the link began: fn → hash, bounded in source characters. */
export class SourceSender {
  private readonly lru: SizedLru<{ hash: string; chars: number }>;
  /** Sources sent on this link and their characters (tests and status). */
  sentCount = 0;
  sentChars = 0;

  constructor(budget = SENT_SOURCES_BUDGET) {
    this.lru = new SizedLru(budget, (v) => v.chars);
  }

  /**
   * The tasks messages that carry `batch` in order: tasks holding a source go compact (`h` and argument
   * bytes), with the sources not sent on this link yet in `functions`; a message stops taking new sources past
   * SOURCES_PER_MESSAGE characters. A batch without such a task is one message of the tasks as they are.
   */
  messages(batch: TaskEnvelope[]): TasksMessage[] {
    let first = -1;
    for (let i = 0; i < batch.length; i++) {
      if ((batch[i] as SourcedTask)[TASK_SOURCE] !== undefined) {
        first = i;
        break;
      }
    }
    if (first < 0) return [{ kind: 'tasks', tasks: batch }];
    const messages: TasksMessage[] = [];
    let current: TasksMessage = { kind: 'tasks', tasks: batch.slice(0, first) };
    let carriedChars = 0;
    // Functions named in the current message. The receiver sets a carried source at the FIRST task naming it
    // in a message and touches it at every later one; so a source the sender no longer holds (evicted since,
    // within this message or before) for a function already named in this message starts a new message,
    // where it is carried and set at the same task on both sides. Otherwise the two orders drift apart.
    let named = new Set<string>();
    let lastFn: string | undefined;
    let lastHash: string | undefined;
    for (let i = first; i < batch.length; i++) {
      const t = batch[i];
      const held = (t as SourcedTask)[TASK_SOURCE];
      if (held === undefined || t.fn === undefined) {
        current.tasks.push(t);
        continue;
      }
      const fn = t.fn;
      // A touch, as at the receiver (the entry touched last is the most recent already: skip it).
      const known = (fn === lastFn && held.hash === lastHash) || this.lru.get(fn)?.hash === held.hash;
      lastFn = fn;
      lastHash = held.hash;
      if (!known) {
        if (named.has(fn) || (carriedChars > 0 && carriedChars + held.source.length > SOURCES_PER_MESSAGE)) {
          messages.push(current);
          current = { kind: 'tasks', tasks: [] };
          carriedChars = 0;
          named = new Set();
        }
        (current.functions ??= {})[fn] = { hash: held.hash, source: held.source };
        carriedChars += held.source.length;
        this.lru.set(fn, { hash: held.hash, chars: held.source.length });
        this.sentCount++;
        this.sentChars += held.source.length;
      }
      named.add(fn);
      current.tasks.push(compactTask(t, held));
    }
    if (current.tasks.length > 0) messages.push(current);
    return messages;
  }

  /** The link changed or the receiver lost sources: nothing is known to be there. */
  reset(): void {
    this.lru.clear();
  }

  get size(): number {
    return this.lru.size;
  }
}

/** What a receiver makes of a task whose source it holds. */
export type AttachSource = (t: TaskEnvelope & { fn: string; h: string }, f: FunctionSource) => TaskEnvelope;

/** The engine's form: the task keeps its argument bytes and gets its source attached (TASK_SOURCE). */
const attachHeld: AttachSource = (t, f) => {
  (t as SourcedTask)[TASK_SOURCE] = { hash: f.hash, source: f.source, args: t.payload };
  return t;
};

/**
 * The receiver's sources: the tasks of a message get their source (`attach`; by default TASK_SOURCE) or
 * come back missing. The endpoint's EndpointSourceCache is one with its own `attach`.
 */
export class SourceReceiver {
  private readonly lru: SizedLru<FunctionSource>;

  constructor(
    budget = ENDPOINT_SOURCES_BUDGET,
    private readonly attach: AttachSource = attachHeld,
  ) {
    this.lru = new SizedLru(budget, (v) => v.source.length);
  }

  /**
   * The tasks of one message, those naming a function (`h`) with their source, and those naming a source not
   * held. Replays the sender's operations for every task of the message, duplicates included, so both sides
   * stay in step.
   */
  expand(m: Pick<TasksMessage, 'tasks' | 'functions'>): { ready: TaskEnvelope[]; missing: TaskEnvelope[] } {
    const carried = m.functions;
    if (carried === undefined && !m.tasks.some((t) => t.h !== undefined)) return { ready: m.tasks, missing: [] };
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
      ready.push(this.attach(t as TaskEnvelope & { fn: string; h: string }, f));
    }
    return { ready, missing };
  }

  /** Whether source `hash` of `fn` is held (without touching it: the order changes only as the sender's does). */
  has(fn: string, hash: string): boolean {
    return this.lru.peek(fn)?.hash === hash;
  }

  /** Forget every source (tests use it to stand for a lost message or a restart). */
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
