/**
 * The manager's two ends of the engine's source links (protocol/source-link.ts): the sources the interchange
 * sent this manager (a SourceReceiver: a task naming one not held is handed back with `missing`), and, per
 * worker process, what the manager sent that process (a SourceSender, made with the process and gone with
 * it: a restarted worker starts empty). A worker serves one user for life and keeps every source it was sent
 * within its budget (worker.ts).
 */
import type { TaskEnvelope, TasksMessage } from '../protocol/messages.js';
import { SourceReceiver, SourceSender } from '../protocol/source-link.js';
import { TASK_SOURCE, heldSource, type SourcedTask } from '../protocol/task-source.js';
import { encodeTask } from '../protocol/payload.js';

/** Per worker process (keyed by the process object): the sources sent on its pipe. */
const toWorkers = new WeakMap<object, SourceSender>();

/** The tasks messages that give `tasks` to the worker process `proc` (sources it has not been sent go along). */
export function workerTasksMessages(proc: object, tasks: TaskEnvelope[]): TasksMessage[] {
  let sent = toWorkers.get(proc);
  if (sent === undefined) toWorkers.set(proc, (sent = new SourceSender()));
  return sent.messages(tasks);
}

/** The manager's copy of the sources the interchange sent it. */
export class ManagerSources {
  readonly received = new SourceReceiver();
  /** Tasks handed back for a missing source since the manager started (tests and logs). */
  missingCount = 0;

  /** The tasks of a message, sources attached; `missing` are to hand back to the interchange. */
  expand(m: TasksMessage): { ready: TaskEnvelope[]; missing: TaskEnvelope[] } {
    const out = this.received.expand(m);
    this.missingCount += out.missing.length;
    return out;
  }
}

/** The task with its full payload (for readers that decode it, the MPI gate); tasks without a held source as they are. */
export function withFullPayload(t: TaskEnvelope): TaskEnvelope {
  const held = heldSource(t);
  if (held === undefined || t.fn === undefined) return t;
  // Without `h` and the held source: what it becomes (placed on nodes) travels whole to the worker.
  const { h: _h, [TASK_SOURCE]: _s, ...rest } = t as SourcedTask;
  return { ...rest, payload: encodeTask({ kind: 'js', functionId: t.fn, source: held.source, args: held.args }) };
}
