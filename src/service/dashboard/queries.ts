/**
 * The few read-only queries the dashboard and /metrics need that the Store interface does not offer:
 * tasks counted by endpoint and state, one user's recent tasks with a search, and the functions a user may
 * see. They run at scrape or page time, never on the task path, on either back end (SQLite or PostgreSQL);
 * only this file reads SQL outside the store.
 */
import type { Store, TaskState } from '../store/index.js';

export interface TaskCount { endpoint: string; state: TaskState; n: number }

export interface TaskRow {
  taskId: string;
  endpointId: string;
  functionId: string | null;
  state: TaskState;
  failed: boolean | null;
  resultBytes: number;
  createdAt: number;
  updatedAt: number;
}

export interface TaskSearch {
  /** Prefix of the task id, function id or endpoint id, or a state name. */
  q?: string;
  state?: TaskState;
  endpointId?: string;
  /** @default 100 (at most 500) */
  limit?: number;
}

type Row = Record<string, unknown>;

interface SqliteLike { kind: 'sqlite'; db: { prepare(sql: string): { all(...params: unknown[]): unknown[] } } }
interface PgLike { kind: 'postgres'; pool: { query(text: string, values: unknown[]): Promise<{ rows: unknown[] }> } }

/** Run a read-only query written with `?` placeholders on whichever back end the store is. */
async function select(store: Store, sql: string, params: unknown[] = []): Promise<Row[]> {
  const s = store as unknown as SqliteLike | PgLike;
  if (s.kind === 'sqlite') return s.db.prepare(sql).all(...params) as Row[];
  if (s.kind === 'postgres') {
    let n = 0;
    return (await s.pool.query(sql.replace(/\?/g, () => `$${++n}`), params)).rows as Row[];
  }
  throw new Error(`the dashboard cannot query a store of kind ${(store as { kind?: string }).kind}`);
}

const bool = (v: unknown): boolean | null => (v === null || v === undefined ? null : v === true || v === 1);

/** Tasks by endpoint and state, over the whole store. */
export async function countTasksByState(store: Store): Promise<TaskCount[]> {
  const rows = await select(store, 'SELECT endpoint, state, COUNT(*) AS n FROM tasks GROUP BY endpoint, state');
  return rows.map((r) => ({ endpoint: r.endpoint as string, state: r.state as TaskState, n: Number(r.n) }));
}

/** One owner's most recent tasks matching a search, newest first. */
export async function searchTasks(store: Store, owner: string, search: TaskSearch): Promise<TaskRow[]> {
  const where = ['owner = ?'];
  const params: unknown[] = [owner];
  if (search.state) (where.push('state = ?'), params.push(search.state));
  if (search.endpointId) (where.push('endpoint = ?'), params.push(search.endpointId));
  const q = search.q?.trim();
  if (q) {
    const like = q.replace(/[%_\\]/g, (c) => `\\${c}`) + '%';
    where.push(`(id LIKE ? ESCAPE '\\' OR function LIKE ? ESCAPE '\\' OR endpoint LIKE ? ESCAPE '\\' OR state = ?)`);
    params.push(like, like, like, q);
  }
  const limit = Math.max(1, Math.min(500, Math.floor(search.limit ?? 100)));
  const rows = await select(store, `SELECT id, endpoint, function, state, failed, LENGTH(result) AS bytes, created_at, updated_at FROM tasks
      WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ${limit}`, params);
  return rows.map((r) => ({
    taskId: r.id as string,
    endpointId: r.endpoint as string,
    functionId: (r.function as string | null) ?? null,
    state: r.state as TaskState,
    failed: bool(r.failed),
    resultBytes: Number(r.bytes ?? 0),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  }));
}

/** Functions the user owns or shares through a group (read-only view), newest first. */
export async function functionsFor(store: Store, userId: string): Promise<Array<{ functionId: string; name: string; owner: string; group: string | null; createdAt: number }>> {
  const rows = await select(store, `SELECT f.id, f.name, u.name AS owner, g.name AS grp, f.created_at FROM functions f JOIN users u ON u.id = f.owner
      LEFT JOIN groups g ON g.id = f.group_id
      WHERE f.owner = ? OR (f.group_id IS NOT NULL AND (g.owner = ? OR EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = f.group_id AND m.user_id = ?)))
      ORDER BY f.created_at DESC LIMIT 500`, [userId, userId, userId]);
  return rows.map((r) => ({ functionId: r.id as string, name: r.name as string, owner: r.owner as string, group: (r.grp as string | null) ?? null, createdAt: Number(r.created_at) }));
}
