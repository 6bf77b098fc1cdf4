/**
 * The embedded back end: one SQLite file (WAL) via better-sqlite3. Calls are synchronous underneath and
 * wrapped in resolved promises, so one service process on one machine pays no round trip.
 *
 * The tasks table is also the forwarder's queue: a task waits in state `waiting-for-endpoint` until the
 * forwarder takes it, so a service restart loses nothing that was accepted. Payloads live in their own
 * table so state updates rewrite a small row.
 */
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { chmodSync } from 'node:fs';
import type { ResultEnvelope, TaskEnvelope } from '../../protocol/messages.js';
import type { ForwarderChannel } from '../../protocol/forwarder-messages.js';
import { MIGRATIONS_TABLE, SQLITE_MIGRATIONS, pending } from './migrations.js';
import { hashToken, newToken } from './tokens.js';
import { errorOutcome } from '../../protocol/payload.js';
import type {
  EndpointMetadata, EndpointRecord, EndpointState, FunctionRecord, Group, InvitationQuotas, NewTask, QuotaName, Store, StoredResults, TaskRecord, TaskState, TaskSummary, Transition, User,
} from './types.js';
import { QuotaExceededError } from './types.js';
import { taskTransitions, type TaskTimes } from './transitions.js';
import { SqliteCheckpointer } from './sqlite-checkpointer.js';
import type { ApiToken, QuotaKey, QuotaOverrides, SubmissionContext, Usage } from './types.js';
import { readSubmissionContext } from './submission-context.js';
import { SqliteTenancy } from './sqlite-tenancy.js';
import { SqliteBatches, addDelta, type FinishRow, type UsageDelta } from './sqlite-batches.js';

type Row = Record<string, unknown>;

export function toEndpoint(r: Row): EndpointRecord {
  return {
    id: r.id as string,
    name: r.name as string,
    owner: r.owner as string,
    publicKey: r.public_key as string,
    state: r.state as EndpointState,
    lastSeen: r.last_seen === null || r.last_seen === undefined ? null : Number(r.last_seen),
    group: (r.group_id as string | null) ?? null,
    ports: r.ports ? (JSON.parse(r.ports as string) as EndpointRecord['ports']) : null,
    replica: (r.replica as string | null | undefined) ?? null,
    metadata: r.metadata ? (JSON.parse(r.metadata as string) as EndpointRecord['metadata']) : null,
    createdAt: Number(r.created_at),
  };
}

export function toTask(r: Row): TaskRecord {
  return {
    id: r.id as string,
    endpoint: r.endpoint as string,
    function: (r.function as string | null) ?? null,
    owner: r.owner as string,
    state: r.state as TaskState,
    failed: r.failed === null || r.failed === undefined ? null : Number(r.failed) === 1,
    result: (r.result as Buffer | null) ?? null,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

/** A row of id, endpoint, function, owner, state, failed, result_bytes, created_at, updated_at (built directly: long-polls read thousands). */
export function toTaskSummary(r: Row): TaskSummary {
  return {
    id: r.id as string,
    endpoint: r.endpoint as string,
    function: (r.function as string | null) ?? null,
    owner: r.owner as string,
    state: r.state as TaskState,
    failed: r.failed === null || r.failed === undefined ? null : Number(r.failed) === 1,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    resultBytes: Number(r.result_bytes),
  };
}

export function toTaskTimes(r: Row): TaskTimes {
  const n = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
  return {
    state: r.state as TaskState,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    deliveredAt: n(r.delivered_at),
    runningAt: n(r.running_at),
    ownerName: (r.owner_name as string | null) ?? '?',
  };
}

/**
 * A task taken for delivery carries its submitter's id (`u`) when that is not the endpoint's owner: the
 * endpoint's manager runs it only in that user's own workers, and the endpoint applies its sharing rules.
 */
export function withUser(t: TaskEnvelope, owner: string, endpointOwner: string | undefined): TaskEnvelope {
  if (owner !== endpointOwner) t.u = owner;
  return t;
}

export function toUser(r: Row | undefined): User | undefined {
  if (!r) return undefined;
  const user: User = { id: r.id as string, name: r.name as string, createdAt: Number(r.created_at) };
  if (r.expires_at !== undefined) user.tokenExpiresAt = r.expires_at === null ? null : Number(r.expires_at);
  return user;
}

export function toFunction(r: Row | undefined): FunctionRecord | undefined {
  return r && { id: r.id as string, owner: r.owner as string, name: r.name as string, source: r.source as string,
    group: (r.group_id as string | null) ?? null, createdAt: Number(r.created_at) };
}

/** Apply the missing migrations (one transaction each); BEGIN IMMEDIATE keeps two processes from racing. */
function migrate(db: Database.Database, path: string): void {
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

function prepareStatements(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
    insertUser: p('INSERT INTO users (id, name, token_hash, created_at) VALUES (?, ?, ?, ?)'),
    userByHash: p('SELECT id, name, created_at, NULL AS expires_at FROM users WHERE token_hash = ? AND disabled = 0'),
    setTokenHash: p('UPDATE users SET token_hash = ? WHERE id = ?'),
    setDisabled: p('UPDATE users SET disabled = ? WHERE id = ?'),
    userByName: p('SELECT id, name, created_at FROM users WHERE name = ?'),
    userById: p('SELECT id, name, created_at FROM users WHERE id = ?'),
    insertGroup: p('INSERT INTO groups (id, name, owner) VALUES (?, ?, ?)'),
    groupByRef: p('SELECT id, name, owner FROM groups WHERE id = ? OR name = ?'),
    addMember: p('INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)'),
    isMember: p('SELECT 1 FROM groups g WHERE g.id = ? AND (g.owner = ? OR EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id AND m.user_id = ?))'),
    groupsOf: p('SELECT DISTINCT g.id, g.name, g.owner FROM groups g LEFT JOIN group_members m ON m.group_id = g.id WHERE g.owner = ? OR m.user_id = ? ORDER BY g.name'),
    membersOf: p('SELECT u.name FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ? ORDER BY u.name'),
    endpoint: p('SELECT * FROM endpoints WHERE id = ?'),
    insertEndpoint: p(`INSERT INTO endpoints (id, name, owner, public_key, group_id, replica, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
    updateEndpoint: p('UPDATE endpoints SET name = ?, public_key = ?, group_id = ?, replica = COALESCE(?, replica), updated_at = ? WHERE id = ?'),
    endpointPorts: p('UPDATE endpoints SET ports = ? WHERE id = ?'),
    endpointMetadata: p('UPDATE endpoints SET metadata = ? WHERE id = ?'),
    endpointState: p('UPDATE endpoints SET state = ?, last_seen = COALESCE(?, last_seen) WHERE id = ?'),
    endpointsFor: p(`SELECT e.* FROM endpoints e WHERE e.owner = ? OR (e.group_id IS NOT NULL AND EXISTS (SELECT 1 FROM groups g
      WHERE g.id = e.group_id AND (g.owner = ? OR EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id AND m.user_id = ?))))
      ORDER BY e.name`),
    allEndpoints: p('SELECT * FROM endpoints'),
    insertFunction: p('INSERT INTO functions (id, owner, name, source, group_id, created_at) VALUES (?, ?, ?, ?, ?, ?)'),
    fn: p('SELECT * FROM functions WHERE id = ?'),
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
    countFunctions: p('SELECT COUNT(*) AS n FROM functions WHERE owner = ?'),
    functionBytes: p('SELECT COALESCE(MAX(function_bytes), 0) AS n FROM user_usage WHERE user_id = ?'),
    countEndpoints: p('SELECT COUNT(*) AS n FROM endpoints WHERE owner = ?'),
    countGroups: p('SELECT COUNT(*) AS n FROM groups WHERE owner = ?'),
    countInvitationsSent: p('SELECT COUNT(*) AS n FROM group_invites i JOIN groups g ON g.id = i.group_id WHERE g.owner = ?'),
    countInbox: p('SELECT COUNT(*) AS n FROM group_invites WHERE user_id = ?'),
    countInboxFrom: p('SELECT COUNT(*) AS n FROM group_invites i JOIN groups g ON g.id = i.group_id WHERE i.user_id = ? AND g.owner = ?'),
    groupOwner: p('SELECT owner FROM groups WHERE id = ?'),
    isInvitedOrMember: p(`SELECT 1 FROM group_invites WHERE group_id = @g AND user_id = @u
      UNION ALL SELECT 1 FROM group_members WHERE group_id = @g AND user_id = @u`),
    insertInvite: p('INSERT OR IGNORE INTO group_invites (group_id, user_id, created_at) VALUES (?, ?, ?)'),
    // Through the two partial indexes (a row is unfinished only in their states): not a scan of every task.
    unfinishedOf: p(`SELECT seq, id, owner FROM tasks WHERE endpoint = ? AND state = 'waiting-for-endpoint'
      UNION ALL SELECT seq, id, owner FROM tasks WHERE endpoint = ? AND state IN ('waiting-for-nodes', 'running')`),
    failTask: p(`UPDATE tasks SET state = 'failed', failed = 1, result = ?, delivered_at = NULL, running_at = NULL, updated_at = ? WHERE seq = ?`),
    deleteEndpoint: p('DELETE FROM endpoints WHERE id = ?'),
    schemaVersion: p(`SELECT COALESCE(MAX(version), 0) AS v FROM ${MIGRATIONS_TABLE}`),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/** The SQLite store. `open` runs the migrations; `db` is exposed for tests and the CLI's maintenance. */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly db: Database.Database;
  private readonly q: Statements;

  private constructor(readonly path: string) {
    this.db = new Database(path);
    // Results and token hashes are nobody else's business (SQLite gives -wal/-shm the same mode).
    if (path !== ':memory:' && path !== '') chmodSync(path, 0o600);
    this.db.pragma('journal_mode = WAL');
    // NORMAL is durable across process crashes in WAL mode; only a power cut can lose the last commits.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
    try {
      migrate(this.db, path);
    } catch (err) {
      this.db.close();
      throw err;
    }
    this.q = prepareStatements(this.db);
    this.tenancy = new SqliteTenancy(this.db);
    this.batches = new SqliteBatches(this.db);
    // Checkpoints run in a thread of their own, not inside whichever commit crosses the threshold.
    if (path !== ':memory:' && path !== '') {
      this.db.pragma('wal_autocheckpoint = 0');
      this.checkpointer = new SqliteCheckpointer(path);
    }
  }

  private readonly checkpointer: SqliteCheckpointer | undefined;

  /** The task path's multi-row statements (sqlite-batches.ts). */
  private readonly batches: SqliteBatches;

  /** Named tokens, quotas per user, usage (sqlite-tenancy.ts). */
  private readonly tenancy: SqliteTenancy;

  /** Open (creating if needed) and migrate the database file. */
  static async open(path: string): Promise<SqliteStore> {
    return new SqliteStore(path);
  }

  async close(): Promise<void> {
    await this.checkpointer?.close();
    if (this.db.open) this.db.close();
  }

  async schemaVersion(): Promise<number> {
    return (this.q.schemaVersion.get() as { v: number }).v;
  }

  // ---- users ---------------------------------------------------------------------------------------------

  async createUser(name: string): Promise<{ user: User; token: string }> {
    const token = newToken();
    const user: User = { id: randomUUID(), name, createdAt: Date.now() };
    this.q.insertUser.run(user.id, name, hashToken(token), user.createdAt);
    return { user, token };
  }

  async userByToken(token: string): Promise<User | undefined> {
    return toUser((this.q.userByHash.get(hashToken(token)) as Row | undefined) ?? this.tenancy.userByApiToken(token));
  }

  async rotateToken(userId: string): Promise<string> {
    const token = newToken();
    this.q.setTokenHash.run(hashToken(token), userId);
    return token;
  }

  async setUserDisabled(userId: string, disabled: boolean): Promise<void> {
    this.q.setDisabled.run(disabled ? 1 : 0, userId);
  }

  async removeUser(userId: string): Promise<{ endpoints: string[]; failedTasks: string[] }> {
    const now = Date.now();
    return this.db.transaction(() => {
      const endpoints = (this.db.prepare('SELECT id FROM endpoints WHERE owner = ?').all(userId) as Array<{ id: string }>).map((r) => r.id);
      const failedTasks: string[] = [];
      for (const id of endpoints) failedTasks.push(...this.failEndpointTasks(id, now));
      const run = (sql: string) => this.db.prepare(sql).run(userId);
      run('DELETE FROM endpoints WHERE owner = ?');
      const owned = 'SELECT id FROM groups WHERE owner = ?';
      run(`UPDATE endpoints SET group_id = NULL WHERE group_id IN (${owned})`);
      run(`UPDATE functions SET group_id = NULL WHERE group_id IN (${owned})`);
      run(`DELETE FROM group_members WHERE group_id IN (${owned})`);
      run(`DELETE FROM group_invites WHERE group_id IN (${owned})`);
      run('DELETE FROM group_invites WHERE user_id = ?');
      run('DELETE FROM groups WHERE owner = ?');
      run('DELETE FROM group_members WHERE user_id = ?');
      run('DELETE FROM functions WHERE owner = ?');
      run('DELETE FROM task_transitions WHERE task IN (SELECT seq FROM tasks WHERE owner = ?)');
      run('DELETE FROM task_payloads WHERE seq IN (SELECT seq FROM tasks WHERE owner = ?)');
      run('DELETE FROM tasks WHERE owner = ?');
      this.tenancy.removeUserRows(userId);
      run('DELETE FROM users WHERE id = ?');
      return { endpoints, failedTasks };
    })();
  }

  async userByName(name: string): Promise<User | undefined> {
    return toUser(this.q.userByName.get(name) as Row | undefined);
  }

  async userById(id: string): Promise<User | undefined> {
    return toUser(this.q.userById.get(id) as Row | undefined);
  }

  // ---- groups --------------------------------------------------------------------------------------------

  async createGroup(name: string, owner: string, maxPerOwner?: number): Promise<Group> {
    const group: Group = { id: randomUUID(), name, owner };
    this.db.transaction(() => {
      this.checkQuota('groups', this.q.countGroups, owner, 1, maxPerOwner);
      this.q.insertGroup.run(group.id, name, owner);
    }).immediate();
    return group;
  }

  async group(ref: string): Promise<Group | undefined> {
    return this.q.groupByRef.get(ref, ref) as Group | undefined;
  }

  async addGroupMember(groupId: string, userId: string): Promise<void> {
    this.q.addMember.run(groupId, userId);
  }

  async isGroupMember(groupId: string, userId: string): Promise<boolean> {
    return this.q.isMember.get(groupId, userId, userId) !== undefined;
  }

  async groupsOf(userId: string): Promise<Array<Group & { members: string[] }>> {
    return (this.q.groupsOf.all(userId, userId) as Group[]).map((g) => ({
      ...g,
      members: (this.q.membersOf.all(g.id) as Array<{ name: string }>).map((m) => m.name),
    }));
  }

  // ---- endpoints -----------------------------------------------------------------------------------------

  async endpoint(id: string): Promise<EndpointRecord | undefined> {
    const r = this.q.endpoint.get(id) as Row | undefined;
    return r && toEndpoint(r);
  }

  async saveEndpoint(e: { id: string; name: string; owner: string; publicKey: string; group: string | null; replica?: string | null }, maxPerOwner?: number): Promise<EndpointRecord> {
    const now = Date.now();
    const replica = e.replica ?? null;
    return this.db.transaction(() => {
      if (this.q.endpoint.get(e.id)) this.q.updateEndpoint.run(e.name, e.publicKey, e.group, replica, now, e.id);
      else {
        this.checkQuota('endpoints', this.q.countEndpoints, e.owner, 1, maxPerOwner);
        this.q.insertEndpoint.run(e.id, e.name, e.owner, e.publicKey, e.group, replica, now, now);
      }
      return toEndpoint(this.q.endpoint.get(e.id) as Row);
    })();
  }

  async deleteEndpoint(id: string): Promise<string[] | undefined> {
    const now = Date.now();
    return this.db.transaction(() => {
      if (!this.q.endpoint.get(id)) return undefined;
      const failed = this.failEndpointTasks(id, now);
      this.q.deleteEndpoint.run(id);
      return failed;
    })();
  }

  /** Inside a transaction: fail the endpoint's unfinished tasks (EndpointDeleted); their ids. */
  private failEndpointTasks(id: string, now: number): string[] {
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

  async inviteToGroup(groupId: string, userId: string | null, quotas?: InvitationQuotas): Promise<void> {
    this.db.transaction(() => {
      const owner = quotas ? (this.q.groupOwner.get(groupId) as { owner: string } | undefined)?.owner : undefined;
      if (quotas && owner !== undefined) this.checkQuota('invitations', this.q.countInvitationsSent, owner, 1, quotas.invitations);
      if (userId === null || this.q.isInvitedOrMember.get({ g: groupId, u: userId })) return;
      if (quotas) this.checkQuota('inbox', this.q.countInbox, userId, 1, quotas.inbox);
      if (quotas?.perSender !== undefined && owner !== undefined) {
        const fromOwner = (this.q.countInboxFrom.get(userId, owner) as { n: number }).n;
        if (fromOwner + 1 > quotas.perSender) throw new QuotaExceededError('inbox', fromOwner, quotas.perSender, 1);
      }
      this.q.insertInvite.run(groupId, userId, Date.now());
    }).immediate();
  }

  async invitationsOf(userId: string): Promise<Group[]> {
    return this.db.prepare(`SELECT g.id, g.name, g.owner FROM group_invites i JOIN groups g ON g.id = i.group_id
      WHERE i.user_id = ? ORDER BY g.name`).all(userId) as Group[];
  }

  async acceptInvitation(groupId: string, userId: string): Promise<boolean> {
    return this.db.transaction(() => {
      if (this.db.prepare('DELETE FROM group_invites WHERE group_id = ? AND user_id = ?').run(groupId, userId).changes === 0) return false;
      this.q.addMember.run(groupId, userId);
      return true;
    })();
  }

  async declineInvitation(groupId: string, userId: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM group_invites WHERE group_id = ? AND user_id = ?').run(groupId, userId).changes > 0;
  }

  async expireInvitations(createdBefore: number): Promise<number> {
    return this.db.prepare('DELETE FROM group_invites WHERE created_at < ?').run(createdBefore).changes;
  }

  async removeGroupMember(groupId: string, userId: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM group_members WHERE group_id = ? AND user_id = ?').run(groupId, userId).changes > 0;
  }

  async deleteGroup(groupId: string): Promise<void> {
    this.db.transaction(() => {
      for (const sql of ['DELETE FROM group_invites WHERE group_id = ?','UPDATE endpoints SET group_id = NULL WHERE group_id = ?', 'UPDATE functions SET group_id = NULL WHERE group_id = ?',
        'DELETE FROM group_members WHERE group_id = ?', 'DELETE FROM groups WHERE id = ?']) this.db.prepare(sql).run(groupId);
    })();
  }

  async deleteFunction(id: string): Promise<void> {
    this.db.prepare('DELETE FROM functions WHERE id = ?').run(id);
  }

  /** Inside a transaction: the task row's delivered and running transitions become rows, before they are overwritten. */
  private materialize(seq: number): void {
    this.q.materializeDelivered.run(seq);
    this.q.materializeRunning.run(seq);
  }

  /** Inside a transaction: throw QuotaExceededError if `adding` more would pass `limit`. */
  private checkQuota(quota: QuotaName, count: Database.Statement, owner: string, adding: number, limit: number | undefined): void {
    if (limit === undefined) return;
    const used = (count.get(owner) as { n: number }).n;
    if (used + adding > limit) throw new QuotaExceededError(quota, used, limit, adding);
  }

  async setEndpointPorts(id: string, ports: Record<ForwarderChannel, number>): Promise<void> {
    this.q.endpointPorts.run(JSON.stringify(ports), id);
  }

  async setEndpointMetadata(id: string, metadata: EndpointMetadata | null): Promise<void> {
    this.q.endpointMetadata.run(metadata ? JSON.stringify(metadata) : null, id);
  }

  async setEndpointState(id: string, state: EndpointState, lastSeen: number | null = null): Promise<void> {
    this.q.endpointState.run(state, lastSeen, id);
  }

  async endpointsFor(userId: string): Promise<EndpointRecord[]> {
    return (this.q.endpointsFor.all(userId, userId, userId) as Row[]).map(toEndpoint);
  }

  async allEndpoints(): Promise<EndpointRecord[]> {
    return (this.q.allEndpoints.all() as Row[]).map(toEndpoint);
  }

  // ---- functions -----------------------------------------------------------------------------------------

  async createFunction(f: { owner: string; name: string; source: string; group: string | null }, maxPerOwner?: number, maxBytesPerOwner?: number): Promise<FunctionRecord> {
    const record: FunctionRecord = { id: randomUUID(), createdAt: Date.now(), ...f };
    this.db.transaction(() => {
      this.checkQuota('functions', this.q.countFunctions, f.owner, 1, maxPerOwner);
      this.checkQuota('functionBytes', this.q.functionBytes, f.owner, Buffer.byteLength(f.source), maxBytesPerOwner);
      this.q.insertFunction.run(record.id, f.owner, f.name, f.source, f.group, record.createdAt);
    })();
    return record;
  }

  async function(id: string): Promise<FunctionRecord | undefined> {
    return toFunction(this.q.fn.get(id) as Row | undefined);
  }

  // ---- tasks ---------------------------------------------------------------------------------------------

  async insertTasks(tasks: readonly NewTask[], actor: string, maxUnfinishedPerOwner?: number): Promise<void> {
    const now = Date.now();
    this.db.transaction(() => {
      if (maxUnfinishedPerOwner !== undefined) {
        const perOwner = new Map<string, number>();
        for (const t of tasks) perOwner.set(t.owner, (perOwner.get(t.owner) ?? 0) + 1);
        for (const [owner, n] of perOwner) this.checkQuota('tasks', this.q.countUnfinished, owner, n, maxUnfinishedPerOwner);
      }
      // received and waiting-for-endpoint are the row's created_at (transitions.ts).
      this.batches.insert(tasks, now);
    })();
  }

  async takeQueued(endpointId: string, limit: number): Promise<TaskEnvelope[]> {
    const now = Date.now();
    return this.db.transaction(() => {
      // Rows as arrays (seq, id, function, owner, payload): no object per row to build and collect.
      const rows = this.q.queued.raw().all(endpointId, limit) as Array<[number, string, string | null, string, Buffer]>;
      if (rows.length === 0) return [];
      this.q.deliverUpTo.run(now, now, endpointId, rows[rows.length - 1][0]);
      const endpointOwner = (this.q.endpoint.get(endpointId) as { owner: string } | undefined)?.owner;
      return rows.map(([, id, fn, owner, payload]) => withUser(fn ? { id, fn, payload } : { id, payload }, owner, endpointOwner));
    })();
  }

  async requeueInFlight(endpointId: string): Promise<number> {
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

  async markRunning(endpointId: string, ids: readonly string[]): Promise<number> {
    const now = Date.now();
    return this.db.transaction(() => this.batches.markRunning(endpointId, ids, now))();
  }

  async storeResults(endpointId: string, results: readonly ResultEnvelope[], running: readonly string[] = []): Promise<StoredResults> {
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

  async task(id: string): Promise<TaskRecord | undefined> {
    const r = this.q.task.get(id) as Row | undefined;
    return r && toTask(r);
  }

  async tasks(ids: readonly string[]): Promise<Map<string, TaskRecord>> {
    const out = new Map<string, TaskRecord>();
    if (ids.length === 0) return out;
    for (const t of this.batches.records(ids)) out.set(t.id, t);
    return out;
  }

  async taskSummaries(ids: readonly string[]): Promise<Map<string, TaskSummary>> {
    const out = new Map<string, TaskSummary>();
    if (ids.length === 0) return out;
    for (const t of this.batches.summaries(ids)) out.set(t.id, t);
    return out;
  }

  async transitions(taskId: string): Promise<Transition[]> {
    const t = this.q.taskTimes.get(taskId) as Row | undefined;
    if (!t) return [];
    return taskTransitions(toTaskTimes(t), this.q.transitions.all(taskId) as Transition[]);
  }

  async countQueued(endpointId: string): Promise<number> {
    return (this.q.countQueued.get(endpointId) as { n: number }).n;
  }

  // ---- named tokens, quotas per user, usage (sqlite-tenancy.ts) -------------------------------------------

  async createApiToken(userId: string, name: string, expiresAt: number | null): Promise<{ token: string; record: ApiToken } | undefined> {
    return this.tenancy.createApiToken(userId, name, expiresAt);
  }

  async apiTokens(userId: string): Promise<ApiToken[]> {
    return this.tenancy.apiTokens(userId);
  }

  async revokeApiToken(userId: string, name: string): Promise<boolean> {
    return this.tenancy.revokeApiToken(userId, name);
  }

  async quotaOverrides(userId: string): Promise<QuotaOverrides> {
    return this.tenancy.quotaOverrides(userId);
  }

  async setQuotaOverrides(userId: string, quotas: Partial<Record<QuotaKey, number | null>>): Promise<void> {
    this.tenancy.setQuotaOverrides(userId, quotas);
  }

  async resultBytesOf(userId: string): Promise<number> {
    return this.tenancy.resultBytesOf(userId);
  }

  submissionContext(userId: string, endpointIds: readonly string[], functionIds: readonly string[]): Promise<SubmissionContext> {
    return readSubmissionContext(this, userId, endpointIds, functionIds);
  }

  async usage(userId: string): Promise<Usage> {
    return this.tenancy.usage(userId);
  }

  async deleteFinishedTasks(owner: string, ids: readonly string[]): Promise<string[]> {
    return this.tenancy.deleteFinishedTasks(owner, ids);
  }
}
