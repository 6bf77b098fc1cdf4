/**
 * The few read-only queries the dashboard and /metrics need that the store does not offer: counts of tasks
 * by endpoint and state, and a user's recent tasks with a search. They run at scrape or page time, never on
 * the task path. Async on purpose: the store is becoming async (PostgreSQL); only this file reads SQL.
 */
import type { Store, TaskState } from '../store.js';

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

interface Db {
  prepare(sql: string): { all(...params: unknown[]): unknown[] };
}

function db(store: Store): Db {
  return (store as unknown as { db: Db }).db;
}

/** Tasks by endpoint and state, over the whole store. */
export async function countTasksByState(store: Store): Promise<TaskCount[]> {
  return db(store).prepare('SELECT endpoint, state, COUNT(*) AS n FROM tasks GROUP BY endpoint, state').all() as TaskCount[];
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
  const limit = Math.max(1, Math.min(500, search.limit ?? 100));
  const rows = db(store)
    .prepare(`SELECT id, endpoint, function, state, failed, LENGTH(result) AS bytes, created_at, updated_at FROM tasks
      WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ${limit}`)
    .all(...params) as Array<Record<string, unknown>>;
  return rows.map((r) => ({
    taskId: r.id as string,
    endpointId: r.endpoint as string,
    functionId: (r.function as string | null) ?? null,
    state: r.state as TaskState,
    failed: r.failed === null || r.failed === undefined ? null : r.failed === 1,
    resultBytes: (r.bytes as number | null) ?? 0,
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
  }));
}

/** Functions the user owns or shares through a group (read-only view). */
export async function functionsFor(store: Store, userId: string): Promise<Array<{ functionId: string; name: string; owner: string; group: string | null; createdAt: number }>> {
  const rows = db(store)
    .prepare(`SELECT f.id, f.name, u.name AS owner, g.name AS grp, f.created_at FROM functions f JOIN users u ON u.id = f.owner
      LEFT JOIN groups g ON g.id = f.group_id
      WHERE f.owner = ? OR (f.group_id IS NOT NULL AND (g.owner = ? OR EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = f.group_id AND m.user_id = ?)))
      ORDER BY f.created_at DESC LIMIT 500`)
    .all(userId, userId, userId) as Array<Record<string, unknown>>;
  return rows.map((r) => ({ functionId: r.id as string, name: r.name as string, owner: r.owner as string, group: (r.grp as string | null) ?? null, createdAt: r.created_at as number }));
}
