/**
 * SQLite: named API tokens, per-user quota overrides and usage (migrations 8 and 10). The SqliteStore methods of
 * the same names delegate here, so the store's task path stays apart from this.
 */
import type Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { hashToken, newToken } from './tokens.js';
import type { ApiToken, QuotaKey, QuotaOverrides, Usage, User } from './types.js';

type Row = Record<string, unknown>;

/** Column of user_quotas per quota. */
export const QUOTA_COLUMNS: Readonly<Record<QuotaKey, string>> = Object.freeze({
  tasks: 'tasks', functions: 'functions', endpoints: 'endpoints', resultBytes: 'result_bytes',
  groups: 'groups_owned', invitations: 'invitations', inbox: 'inbox', functionBytes: 'function_bytes',
});

/** What a user holds of each counted quota but unfinished tasks, one row (`$1` is the user). */
const OTHER_COUNTS = `(SELECT COUNT(*) FROM functions WHERE owner = $1) AS functions, (SELECT COUNT(*) FROM endpoints WHERE owner = $1) AS endpoints,
  (SELECT COUNT(*) FROM groups WHERE owner = $1) AS groups_owned,
  (SELECT COUNT(*) FROM group_invites i JOIN groups g ON g.id = i.group_id WHERE g.owner = $1) AS invitations,
  (SELECT COUNT(*) FROM group_invites WHERE user_id = $1) AS inbox,
  (SELECT COALESCE(MAX(function_bytes), 0) FROM user_usage WHERE user_id = $1) AS function_bytes`;

/** What a user holds of each counted quota, one row (`$1` is the user): PostgreSQL counts unfinished tasks. */
export const USAGE_COUNTS = `(SELECT COUNT(*) FROM tasks WHERE owner = $1 AND state NOT IN ('success', 'failed')) AS tasks, ${OTHER_COUNTS}`;

/** USAGE_COUNTS on SQLite, which keeps a counter of each owner's unfinished tasks (migration 13). */
export const SQLITE_USAGE_COUNTS = `(SELECT COALESCE(MAX(unfinished_tasks), 0) FROM user_usage WHERE user_id = $1) AS tasks, ${OTHER_COUNTS}`;

/** Usage from a row of USAGE_COUNTS and the stored result bytes. */
export function toUsage(c: Row, resultBytes: number): Usage {
  return {
    tasks: Number(c.tasks), functions: Number(c.functions), endpoints: Number(c.endpoints), resultBytes,
    groups: Number(c.groups_owned), invitations: Number(c.invitations), inbox: Number(c.inbox), functionBytes: Number(c.function_bytes),
  };
}

export function toApiToken(r: Row): ApiToken {
  return {
    id: r.id as string,
    userId: r.user_id as string,
    name: r.name as string,
    createdAt: Number(r.created_at),
    expiresAt: r.expires_at === null || r.expires_at === undefined ? null : Number(r.expires_at),
  };
}

export function toOverrides(r: Row | undefined): QuotaOverrides {
  const out: QuotaOverrides = {};
  if (!r) return out;
  for (const [key, column] of Object.entries(QUOTA_COLUMNS) as Array<[QuotaKey, string]>) {
    if (r[column] !== null && r[column] !== undefined) out[key] = Number(r[column]);
  }
  return out;
}

export class SqliteTenancy {
  private readonly q;

  constructor(private readonly db: Database.Database) {
    const p = (sql: string) => db.prepare(sql);
    this.q = {
      userByApiToken: p(`SELECT u.id, u.name, u.created_at, t.expires_at FROM api_tokens t JOIN users u ON u.id = t.user_id
        WHERE t.token_hash = ? AND u.disabled = 0 AND (t.expires_at IS NULL OR t.expires_at > ?)`),
      insertToken: p('INSERT OR IGNORE INTO api_tokens (id, user_id, name, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)'),
      tokens: p('SELECT id, user_id, name, created_at, expires_at FROM api_tokens WHERE user_id = ? ORDER BY name'),
      revoke: p('DELETE FROM api_tokens WHERE user_id = ? AND name = ?'),
      overrides: p('SELECT * FROM user_quotas WHERE user_id = ?'),
      resultBytes: p('SELECT result_bytes FROM user_usage WHERE user_id = ?'),
      counts: p(`SELECT ${SQLITE_USAGE_COUNTS.replaceAll('$1', '@owner')}`),
    };
  }

  /** The user of a named token that has not expired (users' own tokens are looked up by the store). */
  userByApiToken(token: string): Row | undefined {
    return this.q.userByApiToken.get(hashToken(token), Date.now()) as Row | undefined;
  }

  createApiToken(userId: string, name: string, expiresAt: number | null): { token: string; record: ApiToken } | undefined {
    const token = newToken();
    const record: ApiToken = { id: randomUUID(), userId, name, createdAt: Date.now(), expiresAt };
    const r = this.q.insertToken.run(record.id, userId, name, hashToken(token), record.createdAt, expiresAt);
    return r.changes === 1 ? { token, record } : undefined;
  }

  apiTokens(userId: string): ApiToken[] {
    return (this.q.tokens.all(userId) as Row[]).map(toApiToken);
  }

  revokeApiToken(userId: string, name: string): boolean {
    return this.q.revoke.run(userId, name).changes > 0;
  }

  quotaOverrides(userId: string): QuotaOverrides {
    return toOverrides(this.q.overrides.get(userId) as Row | undefined);
  }

  setQuotaOverrides(userId: string, quotas: Partial<Record<QuotaKey, number | null>>): void {
    const keys = (Object.keys(quotas) as QuotaKey[]).filter((k) => quotas[k] !== undefined);
    if (keys.length === 0) return;
    const columns = keys.map((k) => QUOTA_COLUMNS[k]);
    this.db.prepare(`INSERT INTO user_quotas (user_id, ${columns.join(', ')}) VALUES (?, ${columns.map(() => '?').join(', ')})
      ON CONFLICT (user_id) DO UPDATE SET ${columns.map((c) => `${c} = excluded.${c}`).join(', ')}`).run(userId, ...keys.map((k) => quotas[k]));
  }

  resultBytesOf(userId: string): number {
    return Number((this.q.resultBytes.get(userId) as Row | undefined)?.result_bytes ?? 0);
  }

  usage(userId: string): Usage {
    return toUsage(this.q.counts.get({ owner: userId }) as Row, this.resultBytesOf(userId));
  }

  deleteFinishedTasks(owner: string, ids: readonly string[]): string[] {
    return this.db.transaction(() => {
      const rows = this.db.prepare(`SELECT seq, id FROM tasks WHERE owner = ? AND state IN ('success', 'failed')
        AND id IN (SELECT value FROM json_each(?))`).all(owner, JSON.stringify(ids)) as Array<{ seq: number; id: string }>;
      const seqs = JSON.stringify(rows.map((r) => r.seq));
      this.db.prepare('DELETE FROM task_transitions WHERE task IN (SELECT value FROM json_each(?))').run(seqs);
      this.db.prepare('DELETE FROM task_payloads WHERE seq IN (SELECT value FROM json_each(?))').run(seqs);
      this.db.prepare('DELETE FROM tasks WHERE seq IN (SELECT value FROM json_each(?))').run(seqs);
      return rows.map((r) => r.id);
    })();
  }

  /** Inside removeUser's transaction: what of this file is the user's (user_usage: counters of their tasks, deleted with them). */
  removeUserRows(userId: string): void {
    for (const table of ['api_tokens', 'user_quotas', 'user_usage']) this.db.prepare(`DELETE FROM ${table} WHERE user_id = ?`).run(userId);
  }
}

export type { User };
