/**
 * A task's transitions, written once each on the task's own row (schema version 7): `created_at` is
 * received and waiting-for-endpoint (the same instant, one insert), `delivered_at` waiting-for-nodes,
 * `running_at` running, and the final state with `updated_at`. So the hot path writes one row per
 * transition, not the task row plus a `task_transitions` row.
 *
 * `task_transitions` keeps what the columns cannot say: the history a requeue or a service-side failure
 * overwrites. Before such a step the store moves the columns' transitions into `task_transitions`
 * (materialize) and clears them, so the rows always come before what the columns still hold. Tasks stored
 * before version 7 have every transition as a row (their `received` row says so) and no columns set.
 */
import type { TaskState, Transition } from './types.js';

/** What the task row says, as read by the stores. */
export interface TaskTimes {
  state: TaskState;
  createdAt: number;
  updatedAt: number;
  deliveredAt: number | null;
  runningAt: number | null;
  /** The owner's name: the actor of `received`. */
  ownerName: string;
}

const FINAL = new Set<TaskState>(['success', 'failed']);

/** The transitions of one task: the explicit rows (in the order written) merged with the row's columns. */
export function taskTransitions(t: TaskTimes, rows: readonly Transition[]): Transition[] {
  const out: Transition[] = [];
  if (!rows.some((r) => r.state === 'received')) {
    out.push({ state: 'received', actor: `user:${t.ownerName}`, at: t.createdAt });
    out.push({ state: 'waiting-for-endpoint', actor: 'service', at: t.createdAt });
  }
  out.push(...rows);
  if (t.deliveredAt !== null) out.push({ state: 'waiting-for-nodes', actor: 'forwarder', at: t.deliveredAt });
  if (t.runningAt !== null) out.push({ state: 'running', actor: 'endpoint', at: t.runningAt });
  // A final state in the rows was written by the service (EndpointDeleted) or before version 7.
  if (FINAL.has(t.state) && !rows.some((r) => FINAL.has(r.state))) out.push({ state: t.state, actor: 'endpoint', at: t.updatedAt });
  return out;
}
