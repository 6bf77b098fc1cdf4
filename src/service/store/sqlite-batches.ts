/**
 * The SQLite task path's multi-row statements: a batch of tasks is written (and read) through one statement
 * per chunk of up to ROWS_PER_STATEMENT rows, not one per task, so the per-statement cost (bind, step,
 * reset, and for an UPDATE its own search) is paid once per chunk. A statement is prepared once per row
 * count and kept: chunks are ROWS_PER_STATEMENT rows, and the rest goes in chunks of powers of two, so each
 * kind has at most 8 row counts (a statement of every count up to 100 would hold some 18 MiB).
 */
import type Database from 'better-sqlite3';
import type { TaskRecord, TaskState, TaskSummary } from './types.js';

/** Rows per multi-row statement (SQLite allows 32,766 parameters; the widest row here has 5). */
export const ROWS_PER_STATEMENT = 100;

/** Statements of one shape, by row count. */
class Shapes {
  private readonly byRows = new Map<number, Database.Statement>();

  constructor(
    private readonly db: Database.Database,
    private readonly sql: (rows: number) => string,
  ) {}

  get(rows: number): Database.Statement {
    let s = this.byRows.get(rows);
    if (!s) this.byRows.set(rows, (s = this.db.prepare(this.sql(rows))));
    return s;
  }
}

const repeat = (unit: string, n: number): string => new Array<string>(n).fill(unit).join(',');

/** The row counts to write `total` rows in: ROWS_PER_STATEMENT while that many are left, then powers of two. */
export function chunkSizes(total: number): number[] {
  const out: number[] = [];
  let left = total;
  while (left >= ROWS_PER_STATEMENT) {
    out.push(ROWS_PER_STATEMENT);
    left -= ROWS_PER_STATEMENT;
  }
  for (let p = 64; p >= 1; p >>= 1) {
    if (left >= p) {
      out.push(p);
      left -= p;
    }
  }
  return out;
}

/** A task row to insert: id, endpoint, function, owner (payload apart). */
export interface TaskRow {
  id: string;
  endpoint: string;
  function: string | null;
  owner: string;
  payload: Uint8Array;
}

/**
 * What the statements of one transaction changed of an owner's counters in user_usage: stored result bytes
 * and unfinished tasks (migrations 12 and 13). Added up per owner and written once per owner (addUsage), not
 * once per task.
 */
export interface UsageDelta {
  resultBytes: number;
  unfinished: number;
}

/** Add to `owner`'s delta in `deltas`. */
export function addDelta(deltas: Map<string, UsageDelta>, owner: string, resultBytes: number, unfinished: number): void {
  const d = deltas.get(owner);
  if (d) {
    d.resultBytes += resultBytes;
    d.unfinished += unfinished;
  } else deltas.set(owner, { resultBytes, unfinished });
}

/** A result to write: the task's new state, its bytes, and whether its start is written with it (`ran`). */
export interface FinishRow {
  id: string;
  failed: boolean;
  payload: Uint8Array;
  ran: boolean;
}

export class SqliteBatches {
  private readonly insertTasks: Shapes;
  private readonly insertPayloads: Shapes;
  private readonly running: Shapes;
  private readonly finish: Shapes;
  private readonly summaryShapes: Shapes;
  private readonly taskShapes: Shapes;
  private readonly usage: Database.Statement;

  constructor(db: Database.Database) {
    this.insertTasks = new Shapes(db, (n) => `INSERT INTO tasks (id, endpoint, function, owner, state, created_at, updated_at)
      SELECT column1, column2, column3, column4, 'waiting-for-endpoint', column5, column5 FROM (VALUES ${repeat('(?,?,?,?,?)', n)})`);
    this.insertPayloads = new Shapes(db, (n) => `INSERT INTO task_payloads (seq, payload) VALUES ${repeat('(?,?)', n)}`);
    this.running = new Shapes(db, (n) => `UPDATE tasks SET state = 'running', running_at = ?, updated_at = ?
      WHERE endpoint = ? AND state = 'waiting-for-nodes' AND id IN (${repeat('?', n)})`);
    // `ran` (1) records the running transition of a task whose start was reported but not yet written.
    // The rows written come back as id and owner: the result's length is the caller's already (reading the
    // stored blob's length back cost ~0.5 µs a row).
    this.finish = new Shapes(db, (n) => `UPDATE tasks SET state = CASE v.column2 WHEN 1 THEN 'failed' ELSE 'success' END,
        failed = v.column2, result = v.column3, updated_at = ?,
        running_at = CASE WHEN v.column4 = 1 AND tasks.running_at IS NULL AND tasks.state = 'waiting-for-nodes' THEN ? ELSE tasks.running_at END
      FROM (VALUES ${repeat('(?,?,?,?)', n)}) AS v
      WHERE tasks.id = v.column1 AND tasks.endpoint = ? AND tasks.state NOT IN ('success', 'failed')
      RETURNING tasks.id, tasks.owner`);
    this.usage = db.prepare(`INSERT INTO user_usage (user_id, result_bytes, unfinished_tasks) VALUES (?, ?, ?)
      ON CONFLICT (user_id) DO UPDATE SET result_bytes = result_bytes + excluded.result_bytes,
        unfinished_tasks = unfinished_tasks + excluded.unfinished_tasks`);
    this.summaryShapes = new Shapes(db, (n) => `SELECT id, endpoint, function, owner, state, failed, COALESCE(LENGTH(result), 0) AS result_bytes,
      created_at, updated_at FROM tasks WHERE id IN (${repeat('?', n)})`);
    this.taskShapes = new Shapes(db, (n) => `SELECT id, endpoint, function, owner, state, failed, result, created_at, updated_at
      FROM tasks WHERE id IN (${repeat('?', n)})`);
  }

  /** Inside a transaction: insert the tasks (queued) and their payloads; each owner's unfinished tasks count them. */
  insert(tasks: readonly TaskRow[], now: number): void {
    const deltas = new Map<string, UsageDelta>();
    let i = 0;
    for (const n of chunkSizes(tasks.length)) {
      const params: unknown[] = new Array(n * 5);
      for (let j = 0; j < n; j++) {
        const t = tasks[i + j];
        params[j * 5] = t.id;
        params[j * 5 + 1] = t.endpoint;
        params[j * 5 + 2] = t.function;
        params[j * 5 + 3] = t.owner;
        params[j * 5 + 4] = now;
        addDelta(deltas, t.owner, 0, 1);
      }
      const info = this.insertTasks.get(n).run(params);
      // One INSERT gives its rows consecutive rowids (seq is the rowid, written in VALUES order): the last
      // one and the count give them all.
      if (info.changes !== n) throw new Error(`tasks: inserted ${info.changes} rows of ${n}`);
      const first = Number(info.lastInsertRowid) - n + 1;
      const payloads: unknown[] = new Array(n * 2);
      for (let j = 0; j < n; j++) {
        payloads[j * 2] = first + j;
        payloads[j * 2 + 1] = tasks[i + j].payload;
      }
      this.insertPayloads.get(n).run(payloads);
      i += n;
    }
    this.addUsage(deltas);
  }

  /** Inside a transaction: mark delivered tasks of the endpoint running; how many changed. */
  markRunning(endpointId: string, ids: readonly string[], now: number): number {
    let changed = 0;
    let i = 0;
    for (const n of chunkSizes(ids.length)) {
      changed += this.running.get(n).run(now, now, endpointId, ...ids.slice(i, i + n)).changes;
      i += n;
    }
    return changed;
  }

  /**
   * Inside a transaction: write the results of unfinished tasks of the endpoint; the ids written. An id twice
   * in `rows` is written once (callers pass each id once). Each owner's counters change here, once per owner:
   * the bytes written count towards the stored result bytes (migration 12: an unfinished task has no result
   * to replace), and each task written is one unfinished task less (migration 13).
   */
  finishAll(endpointId: string, rows: readonly FinishRow[], now: number): Set<string> {
    const written = new Set<string>();
    const deltas = new Map<string, UsageDelta>();
    let i = 0;
    for (const n of chunkSizes(rows.length)) {
      const params: unknown[] = new Array(n * 4 + 3);
      params[0] = now;
      params[1] = now;
      for (let j = 0; j < n; j++) {
        const r = rows[i + j];
        params[2 + j * 4] = r.id;
        params[3 + j * 4] = r.failed ? 1 : 0;
        params[4 + j * 4] = r.payload;
        params[5 + j * 4] = r.ran ? 1 : 0;
      }
      params[2 + n * 4] = endpointId;
      // Rows come back in the order of the VALUES scan, so each id is found by walking on from the last one;
      // an id not found that way (another plan) is looked up in the whole chunk.
      let at = i;
      for (const [id, owner] of this.finish.get(n).raw().all(params) as Array<[string, string]>) {
        while (at < i + n && rows[at].id !== id) at++;
        const r = at < i + n ? rows[at] : rows.slice(i, i + n).find((x) => x.id === id)!;
        if (at >= i + n) at = i;
        written.add(id);
        addDelta(deltas, owner, r.payload.length, -1);
      }
      i += n;
    }
    this.addUsage(deltas);
    return written;
  }

  /** Inside a transaction: add these deltas to their owners' counters in user_usage (one upsert per owner). */
  addUsage(deltas: ReadonlyMap<string, UsageDelta>): void {
    for (const [owner, d] of deltas) if (d.resultBytes !== 0 || d.unfinished !== 0) this.usage.run(owner, d.resultBytes, d.unfinished);
  }

  /** These tasks' summaries (no result bytes read), from rows as arrays: long-polls read thousands. */
  summaries(ids: readonly string[]): TaskSummary[] {
    return this.select(this.summaryShapes, ids, (r) => ({
      id: r[0] as string, endpoint: r[1] as string, function: (r[2] as string | null) ?? null, owner: r[3] as string,
      state: r[4] as TaskState, failed: r[5] === null ? null : Number(r[5]) === 1, createdAt: Number(r[7]), updatedAt: Number(r[8]),
      resultBytes: Number(r[6]),
    }));
  }

  /** These tasks, with their results. */
  records(ids: readonly string[]): TaskRecord[] {
    return this.select(this.taskShapes, ids, (r) => ({
      id: r[0] as string, endpoint: r[1] as string, function: (r[2] as string | null) ?? null, owner: r[3] as string,
      state: r[4] as TaskState, failed: r[5] === null ? null : Number(r[5]) === 1, result: (r[6] as Buffer | null) ?? null,
      createdAt: Number(r[7]), updatedAt: Number(r[8]),
    }));
  }

  private select<T>(shapes: Shapes, ids: readonly string[], convert: (row: unknown[]) => T): T[] {
    const out: T[] = [];
    let i = 0;
    for (const n of chunkSizes(ids.length)) {
      for (const r of shapes.get(n).raw().all(ids.slice(i, i + n)) as unknown[][]) out.push(convert(r));
      i += n;
    }
    return out;
  }
}
