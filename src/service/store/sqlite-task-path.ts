/**
 * The SQLite store's task path: tasks inserted under the quota of unfinished tasks, taken for delivery,
 * requeued, marked running, finished by results or failed by the service, and read back. SqliteStore's
 * methods of the same names delegate here (in a resolved promise); the multi-row statements are in
 * sqlite-batches.ts, each owner's counters in user_usage are kept there and in failEndpointTasks.
 */
import type Database from 'better-sqlite3';
import type { ResultEnvelope, TaskEnvelope } from '../../protocol/messages.js';
import { errorOutcome } from '../../protocol/payload.js';
import type { NewTask, StoredResults, TaskRecord, TaskSummary, Transition } from './types.js';
import { taskTransitions } from './transitions.js';
import { toTask, toTaskTimes, withUser } from './rows.js';
import { checkQuota } from './sqlite-statements.js';
import { SqliteBatches, addDelta, type FinishRow, type UsageDelta } from './sqlite-batches.js';

type Row = Record<string, unknown>;

function prepareTaskStatements(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
    transition: p('INSERT INTO task_transitions (task, state, actor, at) VALUES (?, ?, ?, ?)'),
    queued: p(`SELECT t.seq, t.id, t.function, t.owner, p.payload FROM tasks t JOIN task_payloads p ON p.seq = t.seq
      WHERE t.endpoint = ? AND t.state = 'waiting-for-endpoint' ORDER BY t.seq LIMIT ?`),
    // The rows `queued` just read: the endpoint's queued tasks up to the last seq read (one statement).
    deliverUpTo: p(`UPDATE tasks SET state = 'waiting-for-nodes', delivered_at = ?, updated_at = ?
      WHERE endpoint = ? AND state = 'waiting-for-endpoint' AND seq <= ?`),
    // Before a requeue or a service-side failure overwrites them: the row's transitions become rows (transitions.ts).
    materializeDelivered: p(`INSERT INTO task_transitions (task, state, actor, at)
      SELECT seq, 'waiting-for-nodes', 'forwarder', delivered_at FROM tasks WHERE seq = ? AND delivered_at IS NOT NULL`),
    materializeRunning: p(`INSERT INTO task_transitions (task, state, actor, at)
      SELECT seq, 'running', 'endpoint', running_at FROM tasks WHERE seq = ? AND running_at IS NOT NULL`),
    requeue: p(`UPDATE tasks SET state = 'waiting-for-endpoint', delivered_at = NULL, running_at = NULL, updated_at = ? WHERE seq = ?`),
    inFlight: p(`SELECT seq FROM tasks WHERE endpoint = ? AND state IN ('waiting-for-nodes', 'running') ORDER BY seq`),
    taskExists: p('SELECT 1 FROM tasks WHERE id = ? AND endpoint = ?'),
    task: p('SELECT id, endpoint, function, owner, state, failed, result, created_at, updated_at FROM tasks WHERE id = ?'),
    transitions: p(`SELECT tr.state, tr.actor, tr.at FROM task_transitions tr JOIN tasks t ON t.seq = tr.task WHERE t.id = ? ORDER BY tr.rowid`),
    taskTimes: p(`SELECT t.state, t.created_at, t.updated_at, t.delivered_at, t.running_at, u.name AS owner_name
      FROM tasks t LEFT JOIN users u ON u.id = t.owner WHERE t.id = ?`),
    countQueued: p(`SELECT COUNT(*) AS n FROM tasks WHERE endpoint = ? AND state = 'waiting-for-endpoint'`),
    // Kept by the statements that move tasks into and out of the unfinished states (migration 13).
    countUnfinished: p('SELECT COALESCE(MAX(unfinished_tasks), 0) AS n FROM user_usage WHERE user_id = ?'),
    // Through the two partial indexes (a row is unfinished only in their states): not a scan of every task.
    unfinishedOf: p(`SELECT seq, id, owner FROM tasks WHERE endpoint = ? AND state = 'waiting-for-endpoint'
      UNION ALL SELECT seq, id, owner FROM tasks WHERE endpoint = ? AND state IN ('waiting-for-nodes', 'running')`),
    failTask: p(`UPDATE tasks SET state = 'failed', failed = 1, result = ?, delivered_at = NULL, running_at = NULL, updated_at = ? WHERE seq = ?`),
    endpointOwner: p('SELECT owner FROM endpoints WHERE id = ?'),
  };
}

export class SqliteTaskPath {
  private readonly q: ReturnType<typeof prepareTaskStatements>;

  /** The task path's multi-row statements (sqlite-batches.ts). */
  private readonly batches: SqliteBatches;

  constructor(private readonly db: Database.Database) {
    this.q = prepareTaskStatements(db);
    this.batches = new SqliteBatches(db);
  }

  insertTasks(tasks: readonly NewTask[], actor: string, maxUnfinishedPerOwner?: number): void {
    const now = Date.now();
    this.db.transaction(() => {
      if (maxUnfinishedPerOwner !== undefined) {
        const perOwner = new Map<string, number>();
        for (const t of tasks) perOwner.set(t.owner, (perOwner.get(t.owner) ?? 0) + 1);
        for (const [owner, n] of perOwner) checkQuota('tasks', this.q.countUnfinished, owner, n, maxUnfinishedPerOwner);
      }
      // received and waiting-for-endpoint are the row's created_at (transitions.ts).
      this.batches.insert(tasks, now);
    })();
  }

  takeQueued(endpointId: string, limit: number): TaskEnvelope[] {
    const now = Date.now();
    return this.db.transaction(() => {
      // Rows as arrays (seq, id, function, owner, payload): no object per row to build and collect.
      const rows = this.q.queued.raw().all(endpointId, limit) as Array<[number, string, string | null, string, Buffer]>;
      if (rows.length === 0) return [];
      this.q.deliverUpTo.run(now, now, endpointId, rows[rows.length - 1][0]);
      const endpointOwner = (this.q.endpointOwner.get(endpointId) as { owner: string } | undefined)?.owner;
      return rows.map(([, id, fn, owner, payload]) => withUser(fn ? { id, fn, payload } : { id, payload }, owner, endpointOwner));
    })();
  }

  requeueInFlight(endpointId: string): number {
    const now = Date.now();
    return this.db.transaction(() => {
      const rows = this.q.inFlight.all(endpointId) as Array<{ seq: number }>;
      for (const r of rows) {
        this.materialize(r.seq);
        this.q.requeue.run(now, r.seq);
        this.q.transition.run(r.seq, 'waiting-for-endpoint', 'forwarder', now);
      }
      return rows.length;
    })();
  }

  markRunning(endpointId: string, ids: readonly string[]): number {
    const now = Date.now();
    return this.db.transaction(() => this.batches.markRunning(endpointId, ids, now))();
  }

  storeResults(endpointId: string, results: readonly ResultEnvelope[], running: readonly string[] = []): StoredResults {
    const now = Date.now();
    return this.db.transaction(() => {
      const out: StoredResults = { stored: [], duplicates: 0, unknown: 0, at: now };
      // A start reported in the same batch as the result is written with the result: one write for both.
      const started = new Set(running);
      const rows: FinishRow[] = [];
      // The first result of an id is the one written; a later one in the batch is a duplicate.
      const seen = new Set<string>();
      for (const r of results) {
        if (seen.has(r.id)) out.duplicates++;
        else {
          seen.add(r.id);
          rows.push({ id: r.id, failed: r.failed, payload: r.payload, ran: started.delete(r.id) });
        }
      }
      if (started.size > 0) this.batches.markRunning(endpointId, [...started], now);
      const written = this.batches.finishAll(endpointId, rows, now);
      for (const r of rows) {
        if (written.has(r.id)) out.stored.push(r.id);
        else if (this.q.taskExists.get(r.id, endpointId)) out.duplicates++;
        else out.unknown++;
      }
      return out;
    })();
  }

  task(id: string): TaskRecord | undefined {
    const r = this.q.task.get(id) as Row | undefined;
    return r && toTask(r);
  }

  tasks(ids: readonly string[]): Map<string, TaskRecord> {
    const out = new Map<string, TaskRecord>();
    if (ids.length === 0) return out;
    for (const t of this.batches.records(ids)) out.set(t.id, t);
    return out;
  }

  taskSummaries(ids: readonly string[]): Map<string, TaskSummary> {
    const out = new Map<string, TaskSummary>();
    if (ids.length === 0) return out;
    for (const t of this.batches.summaries(ids)) out.set(t.id, t);
    return out;
  }

  transitions(taskId: string): Transition[] {
    const t = this.q.taskTimes.get(taskId) as Row | undefined;
    if (!t) return [];
    return taskTransitions(toTaskTimes(t), this.q.transitions.all(taskId) as Transition[]);
  }

  countQueued(endpointId: string): number {
    return (this.q.countQueued.get(endpointId) as { n: number }).n;
  }

  /** Inside a transaction: fail the endpoint's unfinished tasks (EndpointDeleted); their ids. */
  failEndpointTasks(id: string, now: number): string[] {
    const payload = errorOutcome('EndpointDeleted', `endpoint ${id} was deleted before the task finished`);
    const rows = this.q.unfinishedOf.all(id, id) as Array<{ seq: number; id: string; owner: string }>;
    const deltas = new Map<string, UsageDelta>();
    for (const r of rows) {
      this.materialize(r.seq);
      this.q.failTask.run(payload, now, r.seq);
      this.q.transition.run(r.seq, 'failed', 'service', now);
      addDelta(deltas, r.owner, payload.length, -1);
    }
    // The result bytes and unfinished tasks count here, not by trigger (migrations 12 and 13).
    this.batches.addUsage(deltas);
    return rows.map((r) => r.id);
  }

  /** Inside a transaction: the task row's delivered and running transitions become rows, before they are overwritten. */
  private materialize(seq: number): void {
    this.q.materializeDelivered.run(seq);
    this.q.materializeRunning.run(seq);
  }
}
