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
import { hashToken, newToken } from './tokens.js';
import type {
  ApiToken, EndpointMetadata, EndpointRecord, EndpointState, FunctionRecord, Group, InvitationQuotas, NewTask, QuotaKey, QuotaOverrides, Store,
  StoredResults, SubmissionContext, TaskRecord, TaskSummary, Transition, Usage, User,
} from './types.js';
import { QuotaExceededError } from './types.js';
import { SqliteCheckpointer } from './sqlite-checkpointer.js';
import { readSubmissionContext } from './submission-context.js';
import { SqliteTenancy } from './sqlite-tenancy.js';
import { checkQuota, migrate, prepareStatements, type Statements } from './sqlite-statements.js';
import { SqliteTaskPath } from './sqlite-task-path.js';
import { toEndpoint, toFunction, toUser } from './rows.js';

type Row = Record<string, unknown>;

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
    this.taskPath = new SqliteTaskPath(this.db);
    // Checkpoints run in a thread of their own, not inside whichever commit crosses the threshold.
    if (path !== ':memory:' && path !== '') {
      this.db.pragma('wal_autocheckpoint = 0');
      this.checkpointer = new SqliteCheckpointer(path);
    }
  }

  private readonly checkpointer: SqliteCheckpointer | undefined;

  /** Tasks from insert to result (sqlite-task-path.ts). */
  private readonly taskPath: SqliteTaskPath;

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
      for (const id of endpoints) failedTasks.push(...this.taskPath.failEndpointTasks(id, now));
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
      checkQuota('groups', this.q.countGroups, owner, 1, maxPerOwner);
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
        checkQuota('endpoints', this.q.countEndpoints, e.owner, 1, maxPerOwner);
        this.q.insertEndpoint.run(e.id, e.name, e.owner, e.publicKey, e.group, replica, now, now);
      }
      return toEndpoint(this.q.endpoint.get(e.id) as Row);
    })();
  }

  async deleteEndpoint(id: string): Promise<string[] | undefined> {
    const now = Date.now();
    return this.db.transaction(() => {
      if (!this.q.endpoint.get(id)) return undefined;
      const failed = this.taskPath.failEndpointTasks(id, now);
      this.q.deleteEndpoint.run(id);
      return failed;
    })();
  }

  async inviteToGroup(groupId: string, userId: string | null, quotas?: InvitationQuotas): Promise<void> {
    this.db.transaction(() => {
      const owner = quotas ? (this.q.groupOwner.get(groupId) as { owner: string } | undefined)?.owner : undefined;
      if (quotas && owner !== undefined) checkQuota('invitations', this.q.countInvitationsSent, owner, 1, quotas.invitations);
      if (userId === null || this.q.isInvitedOrMember.get({ g: groupId, u: userId })) return;
      if (quotas) checkQuota('inbox', this.q.countInbox, userId, 1, quotas.inbox);
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
      checkQuota('functions', this.q.countFunctions, f.owner, 1, maxPerOwner);
      checkQuota('functionBytes', this.q.functionBytes, f.owner, Buffer.byteLength(f.source), maxBytesPerOwner);
      this.q.insertFunction.run(record.id, f.owner, f.name, f.source, f.group, record.createdAt);
    })();
    return record;
  }

  async function(id: string): Promise<FunctionRecord | undefined> {
    return toFunction(this.q.fn.get(id) as Row | undefined);
  }

  // ---- tasks (sqlite-task-path.ts) -----------------------------------------------------------------------

  async insertTasks(tasks: readonly NewTask[], actor: string, maxUnfinishedPerOwner?: number): Promise<void> {
    this.taskPath.insertTasks(tasks, actor, maxUnfinishedPerOwner);
  }

  async takeQueued(endpointId: string, limit: number): Promise<TaskEnvelope[]> {
    return this.taskPath.takeQueued(endpointId, limit);
  }

  async requeueInFlight(endpointId: string): Promise<number> {
    return this.taskPath.requeueInFlight(endpointId);
  }

  async markRunning(endpointId: string, ids: readonly string[]): Promise<number> {
    return this.taskPath.markRunning(endpointId, ids);
  }

  async storeResults(endpointId: string, results: readonly ResultEnvelope[], running: readonly string[] = []): Promise<StoredResults> {
    return this.taskPath.storeResults(endpointId, results, running);
  }

  async task(id: string): Promise<TaskRecord | undefined> {
    return this.taskPath.task(id);
  }

  async tasks(ids: readonly string[]): Promise<Map<string, TaskRecord>> {
    return this.taskPath.tasks(ids);
  }

  async taskSummaries(ids: readonly string[]): Promise<Map<string, TaskSummary>> {
    return this.taskPath.taskSummaries(ids);
  }

  async transitions(taskId: string): Promise<Transition[]> {
    return this.taskPath.transitions(taskId);
  }

  async countQueued(endpointId: string): Promise<number> {
    return this.taskPath.countQueued(endpointId);
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
