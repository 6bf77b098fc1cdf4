/**
 * The facility back end: PostgreSQL through `pg` connection pools, shared by every service replica.
 *
 * Hot paths are one statement each (data-modifying CTEs over `unnest`ed arrays), so a batch of any size is
 * one round trip and atomic without an explicit transaction. `takeQueued` claims rows with
 * `FOR UPDATE SKIP LOCKED`: only the forwarder that holds an endpoint delivers its tasks, but two claims
 * can never hand out the same task even if two forwarders overlapped for a moment during a failover.
 * A connection failure surfaces as StoreUnavailableError (the API answers 503).
 */
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import type { ResultEnvelope, TaskEnvelope } from '../../protocol/messages.js';
import type { ForwarderChannel } from '../../protocol/forwarder-messages.js';
import { MIGRATIONS_TABLE, POSTGRES_MIGRATIONS, pending } from './migrations.js';
import { toEndpoint, toFunction, toTask, toTaskSummary, toTaskTimes, toUser, withUser } from './sqlite.js';
import { taskTransitions } from './transitions.js';
import { hashToken, newToken } from './tokens.js';
import { unavailableOr } from './unavailable.js';
import type {
  EndpointMetadata, EndpointRecord, EndpointState, FunctionRecord, Group, InvitationQuotas, NewTask, QuotaName, Store, StoredResults, TaskRecord, TaskSummary, Transition, User,
} from './types.js';
import { QuotaExceededError } from './types.js';
import type { ApiToken, QuotaKey, QuotaOverrides, SubmissionContext, Usage } from './types.js';
import { QUOTA_COLUMNS, USAGE_COUNTS, toApiToken, toOverrides, toUsage } from './sqlite-tenancy.js';
import { errorOutcome } from '../../protocol/payload.js';
import { NAMED, QUOTA_COUNT, SQL, type StatementName } from './pg-sql.js';

/** A query in a transaction; `name` makes it a prepared statement, kept by the connection. */
type Query = (text: string, values?: unknown[], name?: string) => Promise<Row[]>;


// BIGINT columns hold epoch ms and sequence numbers, all well inside 2^53: read them as numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

type Row = Record<string, unknown>;

export interface PgStoreOptions {
  /** Most connections of each of the store's two pools (custom and generic plans). @default 10 */
  poolSize?: number;
  /** How long a request waits for a connection before the database counts as unavailable. @default 5000 */
  connectTimeoutMs?: number;
  /** Told about errors on idle connections (a database restart), which would otherwise crash the process. */
  onIdleError?: (err: Error) => void;
}

/**
 * The planner settings of the main pool's connections (every statement but those NAMED marks `generic`),
 * sent with its start-up (a SET after connecting raced the pool's first query on it).
 * - plan_cache_mode=force_custom_plan: each execution is planned with its values and the tables as they are
 *   now. A plan cached on a young database (empty, unanalyzed tables) stays bad as the tables grow:
 *   - the default (auto) cached one after five runs that read each task's payload by a sequential scan,
 *     0.5-1.7 s per delivery or result batch, until autovacuum analyzed the tables a minute later;
 *   - force_generic_plan with sequential scans priced out (tried in issue 14: planning costs ~1.5 ms of a
 *     call) cached a result write that walked every unfinished task through a partial index, 0.4-0.8 s a
 *     batch, in one bench run of three.
 * - jit=off: compiling a statement took 250-450 ms where its estimated cost passed jit_above_cost; the
 *   service's statements are short lookups that never repay it.
 */
export const PG_SESSION_OPTIONS = '-c plan_cache_mode=force_custom_plan -c jit=off';

/**
 * The planner settings of the connections that run the statements marked `generic` in NAMED (pg-sql.ts):
 * lookups by unique keys, planned once per connection and the plan reused (0.05-0.2 ms of planning saved a
 * statement). enable_seqscan=off: on a young, just-analyzed table a sequential scan of its one page is
 * cheaper than the index, and the cached plan would keep scanning as the table grows until the next ANALYZE.
 * A session option, not a SET per statement: plan_cache_mode is read at each bind, so one pool cannot plan
 * some named statements once and the others each time.
 */
export const PG_GENERIC_SESSION_OPTIONS = '-c plan_cache_mode=force_generic_plan -c enable_seqscan=off -c jit=off';

/** A key for pg_advisory_xact_lock: the migrations of one database run one process at a time. */
const MIGRATION_LOCK = 0x66756e63; // "func"

export class PgStore implements Store {
  readonly kind = 'postgres' as const;
  readonly pool: pg.Pool;
  /** The connections for lookups by unique keys, planned once (PG_GENERIC_SESSION_OPTIONS). */
  private readonly lookups: pg.Pool;
  private closing?: Promise<void>;
  /** Where storeResults tells the other replicas what it stored (announceResultsOn), if anywhere. */
  private announce?: { channel: string; sender: string };

  private constructor(readonly url: string, options: PgStoreOptions) {
    const pool = (sessionOptions: string) => new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      idleTimeoutMillis: 30_000,
      application_name: 'funcx-service',
      options: sessionOptions,
    });
    this.pool = pool(PG_SESSION_OPTIONS);
    this.lookups = pool(PG_GENERIC_SESSION_OPTIONS);
    // An idle connection dropped by a database restart: the pool discards it; say so, do not crash.
    for (const p of [this.pool, this.lookups]) p.on('error', (err) => options.onIdleError?.(err));
  }

  /** Connect and bring the schema up to date. */
  static async open(url: string, options: PgStoreOptions = {}): Promise<PgStore> {
    const store = new PgStore(url, options);
    try {
      await store.migrate();
    } catch (err) {
      await store.close();
      unavailableOr(err);
    }
    return store;
  }

  /** Apply missing migrations, each in a transaction under an advisory lock (replicas may start together). */
  private async migrate(): Promise<void> {
    const client = await this.pool.connect();
    try {
      const version = async () => (await client.query(`SELECT COALESCE(MAX(version), 0)::int AS v FROM ${MIGRATIONS_TABLE}`)).rows[0].v as number;
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query(`CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`);
      await client.query('COMMIT');
      for (const m of pending(POSTGRES_MIGRATIONS, await version(), this.describe())) {
        await client.query('BEGIN');
        try {
          await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
          if ((await version()) < m.version) {
            await client.query(m.sql);
            await client.query(`INSERT INTO ${MIGRATIONS_TABLE} (version, name, applied_at) VALUES ($1, $2, $3)`, [m.version, m.name, Date.now()]);
          }
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      }
    } finally {
      client.release();
    }
  }

  /** The URL without its password, for messages. */
  describe(): string {
    try {
      const u = new URL(this.url);
      if (u.password) u.password = '***';
      return u.toString();
    } catch {
      return 'the PostgreSQL database';
    }
  }

  close(): Promise<void> {
    this.closing ??= Promise.all([this.pool.end(), this.lookups.end()]).then(() => undefined, () => undefined);
    return this.closing;
  }

  /** Run an unnamed statement: planned with its values each time (on the custom pool). */
  private async rows(text: string, values: unknown[] = []): Promise<Row[]> {
    try {
      return (await this.pool.query({ text, values })).rows as Row[];
    } catch (err) {
      return unavailableOr(err);
    }
  }

  private async row(text: string, values: unknown[] = []): Promise<Row | undefined> {
    return (await this.rows(text, values))[0];
  }

  /** Run a named statement on the pool that plans it as NAMED says (custom or generic). */
  private async named(name: StatementName, values: unknown[]): Promise<Row[]> {
    const { plan, text } = NAMED[name];
    try {
      return (await (plan === 'generic' ? this.lookups : this.pool).query({ name, text, values })).rows as Row[];
    } catch (err) {
      return unavailableOr(err);
    }
  }

  /** Run `fn` in one transaction on one connection. */
  private async tx<T>(fn: (q: Query) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      return unavailableOr(err);
    }
    try {
      await client.query('BEGIN');
      const out = await fn(async (text, values = [], name) => (await client.query(name ? { name, text, values } : { text, values })).rows as Row[]);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      if (err instanceof QuotaExceededError) throw err;
      return unavailableOr(err);
    } finally {
      client.release();
    }
  }

  /** In a transaction: one writer per owner and quota at a time, then refuse if `adding` more would pass `limit`. */
  private async checkQuota(q: Query, quota: QuotaName, owner: string, adding: number, limit: number): Promise<void> {
    await q('SELECT pg_advisory_xact_lock(hashtext($1))', [`funcx-quota:${quota}:${owner}`], 'quota-lock');
    const used = (await q(QUOTA_COUNT[quota], [owner], `quota-${quota}`))[0].n as number;
    if (used + adding > limit) throw new QuotaExceededError(quota, used, limit, adding);
  }

  async schemaVersion(): Promise<number> {
    return (await this.row(`SELECT COALESCE(MAX(version), 0)::int AS v FROM ${MIGRATIONS_TABLE}`))!.v as number;
  }

  // ---- users ---------------------------------------------------------------------------------------------

  async createUser(name: string): Promise<{ user: User; token: string }> {
    const token = newToken();
    const user: User = { id: randomUUID(), name, createdAt: Date.now() };
    await this.rows('INSERT INTO users (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)', [user.id, name, hashToken(token), user.createdAt]);
    return { user, token };
  }

  async userByToken(token: string): Promise<User | undefined> {
    return toUser((await this.named('user-by-any-token', [hashToken(token), Date.now()]))[0]);
  }

  async rotateToken(userId: string): Promise<string> {
    const token = newToken();
    await this.rows(SQL.rotateToken, [hashToken(token), userId]);
    return token;
  }

  async setUserDisabled(userId: string, disabled: boolean): Promise<void> {
    await this.rows(SQL.setUserDisabled, [disabled, userId]);
  }

  async removeUser(userId: string): Promise<{ endpoints: string[]; failedTasks: string[] }> {
    const now = Date.now();
    return this.tx(async (q) => {
      const endpoints = (await q('SELECT id FROM endpoints WHERE owner = $1 FOR UPDATE', [userId])).map((r) => r.id as string);
      const failedTasks: string[] = [];
      for (const id of endpoints) failedTasks.push(...(await this.failEndpointTasks(q, id, now)));
      const owned = 'SELECT id FROM groups WHERE owner = $1';
      for (const sql of [
        'DELETE FROM endpoints WHERE owner = $1',
        `UPDATE endpoints SET group_id = NULL WHERE group_id IN (${owned})`,
        `UPDATE functions SET group_id = NULL WHERE group_id IN (${owned})`,
        `DELETE FROM group_members WHERE group_id IN (${owned})`,
        `DELETE FROM group_invites WHERE group_id IN (${owned})`,
        'DELETE FROM group_invites WHERE user_id = $1',
        'DELETE FROM groups WHERE owner = $1',
        'DELETE FROM group_members WHERE user_id = $1',
        'DELETE FROM functions WHERE owner = $1',
        'DELETE FROM task_transitions WHERE task IN (SELECT seq FROM tasks WHERE owner = $1)',
        'DELETE FROM task_payloads WHERE seq IN (SELECT seq FROM tasks WHERE owner = $1)',
        'DELETE FROM tasks WHERE owner = $1',
        'DELETE FROM api_tokens WHERE user_id = $1',
        'DELETE FROM user_quotas WHERE user_id = $1',
        'DELETE FROM user_usage WHERE user_id = $1',
        'DELETE FROM users WHERE id = $1',
      ]) await q(sql, [userId]);
      await q(SQL.tellTokens, []);
      return { endpoints, failedTasks };
    });
  }

  async inviteToGroup(groupId: string, userId: string | null, quotas?: InvitationQuotas): Promise<void> {
    const insert = `INSERT INTO group_invites (group_id, user_id, created_at) SELECT $1, $2, $3
      WHERE NOT EXISTS (SELECT 1 FROM group_members WHERE group_id = $1 AND user_id = $2) ON CONFLICT DO NOTHING`;
    if (!quotas) {
      if (userId !== null) await this.rows(insert, [groupId, userId, Date.now()]);
      return;
    }
    // Locks in one order, the sender's then the inbox's (checkQuota): no transaction holds an inbox lock
    // while it waits for a sender's, so invitations crossing each other cannot deadlock.
    await this.tx(async (q) => {
      const owner = (await q('SELECT owner FROM groups WHERE id = $1', [groupId]))[0]?.owner as string | undefined;
      if (owner !== undefined) await this.checkQuota(q, 'invitations', owner, 1, quotas.invitations);
      if (userId === null) return;
      const already = await q(`SELECT 1 FROM group_invites WHERE group_id = $1 AND user_id = $2
        UNION ALL SELECT 1 FROM group_members WHERE group_id = $1 AND user_id = $2`, [groupId, userId]);
      if (already.length > 0) return;
      await this.checkQuota(q, 'inbox', userId, 1, quotas.inbox);
      if (quotas.perSender !== undefined && owner !== undefined) {
        const fromOwner = (await q(`SELECT count(*)::int AS n FROM group_invites i JOIN groups g ON g.id = i.group_id
          WHERE i.user_id = $1 AND g.owner = $2`, [userId, owner]))[0].n as number;
        if (fromOwner + 1 > quotas.perSender) throw new QuotaExceededError('inbox', fromOwner, quotas.perSender, 1);
      }
      await q(insert, [groupId, userId, Date.now()]);
    });
  }

  async invitationsOf(userId: string): Promise<Group[]> {
    return (await this.rows(`SELECT g.id, g.name, g.owner FROM group_invites i JOIN groups g ON g.id = i.group_id
      WHERE i.user_id = $1 ORDER BY g.name COLLATE "C"`, [userId])) as unknown as Group[];
  }

  async acceptInvitation(groupId: string, userId: string): Promise<boolean> {
    return this.tx(async (q) => {
      if ((await q('DELETE FROM group_invites WHERE group_id = $1 AND user_id = $2 RETURNING 1', [groupId, userId])).length === 0) return false;
      await q('INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [groupId, userId]);
      return true;
    });
  }

  async declineInvitation(groupId: string, userId: string): Promise<boolean> {
    return (await this.rows('DELETE FROM group_invites WHERE group_id = $1 AND user_id = $2 RETURNING 1', [groupId, userId])).length > 0;
  }

  async expireInvitations(createdBefore: number): Promise<number> {
    return (await this.rows('DELETE FROM group_invites WHERE created_at < $1 RETURNING 1', [createdBefore])).length;
  }

  async removeGroupMember(groupId: string, userId: string): Promise<boolean> {
    return (await this.rows('DELETE FROM group_members WHERE group_id = $1 AND user_id = $2 RETURNING 1', [groupId, userId])).length > 0;
  }

  async deleteGroup(groupId: string): Promise<void> {
    await this.tx(async (q) => {
      for (const sql of ['DELETE FROM group_invites WHERE group_id = $1','UPDATE endpoints SET group_id = NULL WHERE group_id = $1', 'UPDATE functions SET group_id = NULL WHERE group_id = $1',
        'DELETE FROM group_members WHERE group_id = $1', 'DELETE FROM groups WHERE id = $1']) await q(sql, [groupId]);
    });
  }

  async deleteFunction(id: string): Promise<void> {
    await this.rows('DELETE FROM functions WHERE id = $1', [id]);
  }

  async userByName(name: string): Promise<User | undefined> {
    return toUser(await this.row('SELECT id, name, created_at FROM users WHERE name = $1', [name]));
  }

  async userById(id: string): Promise<User | undefined> {
    return toUser(await this.row('SELECT id, name, created_at FROM users WHERE id = $1', [id]));
  }

  // ---- groups --------------------------------------------------------------------------------------------

  async createGroup(name: string, owner: string, maxPerOwner?: number): Promise<Group> {
    const group: Group = { id: randomUUID(), name, owner };
    const insert = 'INSERT INTO groups (id, name, owner) VALUES ($1, $2, $3)';
    if (maxPerOwner === undefined) await this.rows(insert, [group.id, name, owner]);
    else {
      await this.tx(async (q) => {
        await this.checkQuota(q, 'groups', owner, 1, maxPerOwner);
        await q(insert, [group.id, name, owner]);
      });
    }
    return group;
  }

  async group(ref: string): Promise<Group | undefined> {
    return (await this.row('SELECT id, name, owner FROM groups WHERE id = $1 OR name = $1', [ref])) as Group | undefined;
  }

  async addGroupMember(groupId: string, userId: string): Promise<void> {
    await this.rows('INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [groupId, userId]);
  }

  async isGroupMember(groupId: string, userId: string): Promise<boolean> {
    return (await this.named('is-member', [groupId, userId])).length > 0;
  }

  async groupsOf(userId: string): Promise<Array<Group & { members: string[] }>> {
    // COLLATE "C": names sort by code point, as SQLite sorts them.
    const rows = await this.rows(`SELECT g.id, g.name, g.owner,
        ARRAY(SELECT u.name FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = g.id ORDER BY u.name COLLATE "C") AS members
      FROM groups g WHERE g.owner = $1 OR EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id AND m.user_id = $1)
      ORDER BY g.name COLLATE "C"`, [userId]);
    return rows.map((r) => ({ id: r.id as string, name: r.name as string, owner: r.owner as string, members: r.members as string[] }));
  }

  // ---- endpoints -----------------------------------------------------------------------------------------

  async endpoint(id: string): Promise<EndpointRecord | undefined> {
    const [r] = await this.named('endpoint', [id]);
    return r && toEndpoint(r);
  }

  async saveEndpoint(e: { id: string; name: string; owner: string; publicKey: string; group: string | null; replica?: string | null }, maxPerOwner?: number): Promise<EndpointRecord> {
    const now = Date.now();
    const upsert = `INSERT INTO endpoints (id, name, owner, public_key, group_id, replica, created_at, updated_at)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
      ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, public_key = EXCLUDED.public_key, group_id = EXCLUDED.group_id,
        replica = COALESCE(EXCLUDED.replica, endpoints.replica), updated_at = EXCLUDED.updated_at
      RETURNING *`;
    const values = [e.id, e.name, e.owner, e.publicKey, e.group, e.replica ?? null, now];
    if (maxPerOwner === undefined) return toEndpoint((await this.row(upsert, values))!);
    return this.tx(async (q) => {
      if ((await q('SELECT 1 FROM endpoints WHERE id = $1', [e.id])).length === 0) await this.checkQuota(q, 'endpoints', e.owner, 1, maxPerOwner);
      return toEndpoint((await q(upsert, values))[0]);
    });
  }

  async deleteEndpoint(id: string): Promise<string[] | undefined> {
    const now = Date.now();
    return this.tx(async (q) => {
      if ((await q('SELECT 1 FROM endpoints WHERE id = $1 FOR UPDATE', [id])).length === 0) return undefined;
      const failed = await this.failEndpointTasks(q, id, now);
      await q('DELETE FROM endpoints WHERE id = $1', [id]);
      return failed;
    });
  }

  /** In a transaction: fail the endpoint's unfinished tasks (EndpointDeleted); their ids. */
  private async failEndpointTasks(q: Query, id: string, now: number): Promise<string[]> {
    const payload = errorOutcome('EndpointDeleted', `endpoint ${id} was deleted before the task finished`);
    const failed = await q(SQL.failEndpointTasks, [id, payload, now]);
    return failed.map((r) => r.id as string);
  }

  async setEndpointPorts(id: string, ports: Record<ForwarderChannel, number>): Promise<void> {
    await this.rows('UPDATE endpoints SET ports = $1 WHERE id = $2', [JSON.stringify(ports), id]);
  }

  async setEndpointMetadata(id: string, metadata: EndpointMetadata | null): Promise<void> {
    await this.rows('UPDATE endpoints SET metadata = $1 WHERE id = $2', [metadata ? JSON.stringify(metadata) : null, id]);
  }

  async setEndpointState(id: string, state: EndpointState, lastSeen: number | null = null): Promise<void> {
    await this.named('endpoint-state', [state, lastSeen, id]);
  }

  async endpointsFor(userId: string): Promise<EndpointRecord[]> {
    const rows = await this.rows(`SELECT e.* FROM endpoints e WHERE e.owner = $1 OR (e.group_id IS NOT NULL AND EXISTS (SELECT 1 FROM groups g
      WHERE g.id = e.group_id AND (g.owner = $1 OR EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id AND m.user_id = $1))))
      ORDER BY e.name COLLATE "C"`, [userId]);
    return rows.map(toEndpoint);
  }

  async allEndpoints(): Promise<EndpointRecord[]> {
    return (await this.rows('SELECT * FROM endpoints')).map(toEndpoint);
  }

  // ---- functions -----------------------------------------------------------------------------------------

  async createFunction(f: { owner: string; name: string; source: string; group: string | null }, maxPerOwner?: number, maxBytesPerOwner?: number): Promise<FunctionRecord> {
    const record: FunctionRecord = { id: randomUUID(), createdAt: Date.now(), ...f };
    const insert = 'INSERT INTO functions (id, owner, name, source, group_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)';
    const values = [record.id, f.owner, f.name, f.source, f.group, record.createdAt];
    if (maxPerOwner === undefined && maxBytesPerOwner === undefined) await this.rows(insert, values);
    else {
      await this.tx(async (q) => {
        if (maxPerOwner !== undefined) await this.checkQuota(q, 'functions', f.owner, 1, maxPerOwner);
        if (maxBytesPerOwner !== undefined) await this.checkQuota(q, 'functionBytes', f.owner, Buffer.byteLength(f.source), maxBytesPerOwner);
        await q(insert, values);
      });
    }
    return record;
  }

  async function(id: string): Promise<FunctionRecord | undefined> {
    return toFunction((await this.named('function', [id]))[0]);
  }

  // ---- tasks ---------------------------------------------------------------------------------------------

  async insertTasks(tasks: readonly NewTask[], _actor: string, maxUnfinishedPerOwner?: number): Promise<void> {
    if (tasks.length === 0) return;
    const [refused] = await this.named('insert-tasks', [
      tasks.map((t) => t.id),
      tasks.map((t) => t.endpoint),
      tasks.map((t) => t.function),
      tasks.map((t) => t.owner),
      tasks.map((t) => Buffer.from(t.payload.buffer, t.payload.byteOffset, t.payload.byteLength)),
      Date.now(),
      maxUnfinishedPerOwner ?? null,
    ]);
    if (refused) throw new QuotaExceededError('tasks', refused.quota_used as number, maxUnfinishedPerOwner!, refused.quota_adding as number);
  }

  async takeQueued(endpointId: string, limit: number): Promise<TaskEnvelope[]> {
    const rows = await this.named('take-queued', [endpointId, limit, Date.now()]);
    return rows.map((r) => withUser(r.function
      ? { id: r.id as string, fn: r.function as string, payload: r.payload as Buffer }
      : { id: r.id as string, payload: r.payload as Buffer }, r.owner as string, r.endpoint_owner as string | undefined));
  }

  async requeueInFlight(endpointId: string): Promise<number> {
    return (await this.named('requeue', [endpointId, Date.now()]))[0].n as number;
  }

  async markRunning(endpointId: string, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    return (await this.named('running', [endpointId, ids, Date.now()]))[0].n as number;
  }

  /**
   * From now on storeResults also notifies `channel` with `<sender> <id>,<id>...` (chunks of at most 150 ids)
   * when it commits: the replica bus's doorbell for results (pg-bus.ts) costs no statement of its own.
   */
  announceResultsOn(channel: string, sender: string): void {
    this.announce = { channel, sender };
  }

  async storeResults(endpointId: string, results: readonly ResultEnvelope[], running: readonly string[] = []): Promise<StoredResults> {
    const now = Date.now();
    const out: StoredResults = { stored: [], duplicates: 0, unknown: 0, at: now };
    if (results.length === 0) {
      await this.markRunning(endpointId, running);
      return out;
    }
    const started = new Set(running);
    const ran = results.map((r) => started.delete(r.id));
    const values = [
      endpointId,
      results.map((r) => r.id),
      results.map((r) => r.failed),
      results.map((r) => Buffer.from(r.payload.buffer, r.payload.byteOffset, r.payload.byteLength)),
      now,
      [...started],
      ran,
    ];
    const { announce } = this;
    const rows = announce
      ? await this.named('store-results-announced', [...values, announce.channel, announce.sender])
      : await this.named('store-results', values);
    for (const r of rows) {
      if (r.stored) out.stored.push(r.id as string);
      else if (r.known) out.duplicates++;
      else out.unknown++;
    }
    return out;
  }

  async task(id: string): Promise<TaskRecord | undefined> {
    const [r] = await this.named('task', [id]);
    return r && toTask(r);
  }

  async tasks(ids: readonly string[]): Promise<Map<string, TaskRecord>> {
    const out = new Map<string, TaskRecord>();
    if (ids.length === 0) return out;
    for (const r of await this.named('tasks', [ids])) out.set(r.id as string, toTask(r));
    return out;
  }

  async taskSummaries(ids: readonly string[]): Promise<Map<string, TaskSummary>> {
    const out = new Map<string, TaskSummary>();
    if (ids.length === 0) return out;
    const rows = await this.named('task-summaries', [ids]);
    for (const r of rows) out.set(r.id as string, toTaskSummary(r));
    return out;
  }

  async transitions(taskId: string): Promise<Transition[]> {
    const r = await this.row(SQL.transitions, [taskId]);
    if (!r) return [];
    const rows = (r.rows as Array<{ state: string; actor: string; at: number | string }>).map((x) => ({ ...x, at: Number(x.at) }) as Transition);
    return taskTransitions(toTaskTimes(r), rows);
  }

  async countQueued(endpointId: string): Promise<number> {
    return (await this.named('count-queued', [endpointId]))[0].n as number;
  }

  // ---- named tokens, quotas per user, usage (migration 8) -------------------------------------------------

  async createApiToken(userId: string, name: string, expiresAt: number | null): Promise<{ token: string; record: ApiToken } | undefined> {
    const token = newToken();
    const record: ApiToken = { id: randomUUID(), userId, name, createdAt: Date.now(), expiresAt };
    const r = await this.rows(`INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
      ON CONFLICT DO NOTHING RETURNING id`, [record.id, userId, name, hashToken(token), record.createdAt, expiresAt]);
    return r.length === 1 ? { token, record } : undefined;
  }

  async apiTokens(userId: string): Promise<ApiToken[]> {
    return (await this.rows('SELECT id, user_id, name, created_at, expires_at FROM api_tokens WHERE user_id = $1 ORDER BY name COLLATE "C"', [userId])).map(toApiToken);
  }

  async revokeApiToken(userId: string, name: string): Promise<boolean> {
    return (await this.rows(SQL.revokeApiToken, [userId, name])).length > 0;
  }

  async quotaOverrides(userId: string): Promise<QuotaOverrides> {
    return toOverrides(await this.row('SELECT * FROM user_quotas WHERE user_id = $1', [userId]));
  }

  async setQuotaOverrides(userId: string, quotas: Partial<Record<QuotaKey, number | null>>): Promise<void> {
    const keys = (Object.keys(quotas) as QuotaKey[]).filter((k) => quotas[k] !== undefined);
    if (keys.length === 0) return;
    const columns = keys.map((k) => QUOTA_COLUMNS[k]);
    await this.rows(`INSERT INTO user_quotas (user_id, ${columns.join(', ')}) VALUES ($1, ${columns.map((_, i) => `$${i + 2}`).join(', ')})
      ON CONFLICT (user_id) DO UPDATE SET ${columns.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`, [userId, ...keys.map((k) => quotas[k])]);
  }

  async resultBytesOf(userId: string): Promise<number> {
    return Number((await this.named('result-bytes-of', [userId]))[0]?.result_bytes ?? 0);
  }

  async submissionContext(userId: string, endpointIds: readonly string[], functionIds: readonly string[]): Promise<SubmissionContext> {
    const [r] = await this.named('submission-context', [userId, endpointIds, functionIds]);
    const out: SubmissionContext = {
      overrides: toOverrides((r.quotas as Row | null) ?? undefined),
      resultBytes: Number(r.result_bytes ?? 0),
      endpoints: new Map(),
      functions: new Map(),
      groups: new Set(r.groups as string[]),
    };
    for (const e of (r.endpoints as Row[] | null) ?? []) out.endpoints.set(e.id as string, toEndpoint(e));
    for (const f of (r.functions as Row[] | null) ?? []) out.functions.set(f.id as string, toFunction(f)!);
    return out;
  }

  async usage(userId: string): Promise<Usage> {
    const c = (await this.row(`SELECT ${USAGE_COUNTS}, (SELECT COALESCE(MAX(result_bytes), 0) FROM user_usage WHERE user_id = $1) AS result_bytes`, [userId]))!;
    return toUsage(c, Number(c.result_bytes));
  }

  async deleteFinishedTasks(owner: string, ids: readonly string[]): Promise<string[]> {
    return this.tx(async (q) => {
      const rows = await q(`SELECT seq, id FROM tasks WHERE owner = $1 AND state IN ('success', 'failed') AND id = ANY($2::text[]) FOR UPDATE`, [owner, ids]);
      const seqs = rows.map((r) => r.seq);
      await q('DELETE FROM task_transitions WHERE task = ANY($1::bigint[])', [seqs]);
      await q('DELETE FROM task_payloads WHERE seq = ANY($1::bigint[])', [seqs]);
      await q('DELETE FROM tasks WHERE seq = ANY($1::bigint[])', [seqs]);
      return rows.map((r) => r.id as string);
    });
  }
}
