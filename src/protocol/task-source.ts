/**
 * The function source a JS task runs, held beside the task in memory (never on the wire): the interchange
 * and the manager send a task that names its function by id and hash (`fn`, `h`) with its argument bytes,
 * and send the source itself once per manager connection and once per worker process (function-sources.ts
 * has the protocol; engine/manager-sources.ts and worker/function-sources-cache.ts are the two links).
 *
 * The source rides on a symbol-keyed property: msgpack (and JSON) skip symbol keys, so a task that has one
 * still encodes to its routed fields only, and `{...task}` keeps it.
 */
import type { FunctionSource, TaskEnvelope } from './messages.js';

export const TASK_SOURCE: unique symbol = Symbol('funcx.taskSource');

/** What a task running a function's source carries in memory: the source, its hash, and the argument bytes. */
export interface HeldSource extends FunctionSource {
  args: Uint8Array;
}

export type SourcedTask = TaskEnvelope & { [TASK_SOURCE]?: HeldSource };

export function heldSource(t: TaskEnvelope): HeldSource | undefined {
  return (t as SourcedTask)[TASK_SOURCE];
}

/** The task as it travels: routing headers, `h`, and the argument bytes as payload (the source stays behind). */
export function compactTask(t: TaskEnvelope, held: HeldSource): SourcedTask {
  const out: SourcedTask = { id: t.id, fn: t.fn, h: held.hash, payload: held.args };
  if (t.wt !== undefined) out.wt = t.wt;
  if (t.u !== undefined) out.u = t.u;
  out[TASK_SOURCE] = held;
  return out;
}
