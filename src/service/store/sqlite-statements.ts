/**
 * The SQLite store's set-up: the migrations applied at open, and the prepared statements of everything but
 * the task path (users, groups, endpoints, functions, invitations, quotas), whose own are in
 * sqlite-task-path.ts.
 */
import type Database from 'better-sqlite3';
import { MIGRATIONS_TABLE, SQLITE_MIGRATIONS, pending } from './migrations.js';
import { QuotaExceededError, type QuotaName } from './types.js';

/** Apply the missing migrations (one transaction each); BEGIN IMMEDIATE keeps two processes from racing. */
export function migrate(db: Database.Database, path: string): void {
  db.exec(`CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
  const current = () => (db.prepare(`SELECT COALESCE(MAX(version), 0) AS v FROM ${MIGRATIONS_TABLE}`).get() as { v: number }).v;
  for (const m of pending(SQLITE_MIGRATIONS, current(), path)) {
    db.transaction(() => {
      if (current() >= m.version) return; // another process applied it meanwhile
      db.exec(m.sql);
      db.prepare(`INSERT INTO ${MIGRATIONS_TABLE} (version, name, applied_at) VALUES (?, ?, ?)`).run(m.version, m.name, Date.now());
    }).immediate();
  }
}

/** The SQL of users, groups, endpoints, functions and invitations, prepared once per store (prepareStatements). */
const SQL = {
  insertUser: 'INSERT INTO users (id, name, token_hash, created_at) VALUES (?, ?, ?, ?)',
  userByHash: 'SELECT id, name, created_at, NULL AS expires_at FROM users WHERE token_hash = ? AND disabled = 0',
  setTokenHash: 'UPDATE users SET token_hash = ? WHERE id = ?',
  setDisabled: 'UPDATE users SET disabled = ? WHERE id = ?',
  userByName: 'SELECT id, name, created_at FROM users WHERE name = ?',
  userById: 'SELECT id, name, created_at FROM users WHERE id = ?',
  insertGroup: 'INSERT INTO groups (id, name, owner) VALUES (?, ?, ?)',
  groupByRef: 'SELECT id, name, owner FROM groups WHERE id = ? OR name = ?',
  addMember: 'INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)',
  isMember: 'SELECT 1 FROM groups g WHERE g.id = ? AND (g.owner = ? OR EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id AND m.user_id = ?))',
  groupsOf: 'SELECT DISTINCT g.id, g.name, g.owner FROM groups g LEFT JOIN group_members m ON m.group_id = g.id WHERE g.owner = ? OR m.user_id = ? ORDER BY g.name',
  membersOf: 'SELECT u.name FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ? ORDER BY u.name',
  endpoint: 'SELECT * FROM endpoints WHERE id = ?',
  insertEndpoint: `INSERT INTO endpoints (id, name, owner, public_key, group_id, replica, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  updateEndpoint: 'UPDATE endpoints SET name = ?, public_key = ?, group_id = ?, replica = COALESCE(?, replica), updated_at = ? WHERE id = ?',
  endpointPorts: 'UPDATE endpoints SET ports = ? WHERE id = ?',
  endpointMetadata: 'UPDATE endpoints SET metadata = ? WHERE id = ?',
  endpointState: 'UPDATE endpoints SET state = ?, last_seen = COALESCE(?, last_seen) WHERE id = ?',
  endpointsFor: `SELECT e.* FROM endpoints e WHERE e.owner = ? OR (e.group_id IS NOT NULL AND EXISTS (SELECT 1 FROM groups g
    WHERE g.id = e.group_id AND (g.owner = ? OR EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id AND m.user_id = ?))))
    ORDER BY e.name`,
  allEndpoints: 'SELECT * FROM endpoints',
  insertFunction: 'INSERT INTO functions (id, owner, name, source, group_id, created_at) VALUES (?, ?, ?, ?, ?, ?)',
  fn: 'SELECT * FROM functions WHERE id = ?',
  countFunctions: 'SELECT COUNT(*) AS n FROM functions WHERE owner = ?',
  functionBytes: 'SELECT COALESCE(MAX(function_bytes), 0) AS n FROM user_usage WHERE user_id = ?',
  countEndpoints: 'SELECT COUNT(*) AS n FROM endpoints WHERE owner = ?',
  countGroups: 'SELECT COUNT(*) AS n FROM groups WHERE owner = ?',
  countInvitationsSent: 'SELECT COUNT(*) AS n FROM group_invites i JOIN groups g ON g.id = i.group_id WHERE g.owner = ?',
  countInbox: 'SELECT COUNT(*) AS n FROM group_invites WHERE user_id = ?',
  countInboxFrom: 'SELECT COUNT(*) AS n FROM group_invites i JOIN groups g ON g.id = i.group_id WHERE i.user_id = ? AND g.owner = ?',
  groupOwner: 'SELECT owner FROM groups WHERE id = ?',
  isInvitedOrMember: `SELECT 1 FROM group_invites WHERE group_id = @g AND user_id = @u
    UNION ALL SELECT 1 FROM group_members WHERE group_id = @g AND user_id = @u`,
  insertInvite: 'INSERT OR IGNORE INTO group_invites (group_id, user_id, created_at) VALUES (?, ?, ?)',
  deleteEndpoint: 'DELETE FROM endpoints WHERE id = ?',
  schemaVersion: `SELECT COALESCE(MAX(version), 0) AS v FROM ${MIGRATIONS_TABLE}`,
};

export type Statements = Record<keyof typeof SQL, Database.Statement>;

export function prepareStatements(db: Database.Database): Statements {
  return Object.fromEntries(Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)])) as Statements;
}

/** Inside a transaction: throw QuotaExceededError if `adding` more would pass `limit` (`count` reads the use). */
export function checkQuota(quota: QuotaName, count: Database.Statement, owner: string, adding: number, limit: number | undefined): void {
  if (limit === undefined) return;
  const used = (count.get(owner) as { n: number }).n;
  if (used + adding > limit) throw new QuotaExceededError(quota, used, limit, adding);
}
