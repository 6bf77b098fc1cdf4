/**
 * The facility back end: PostgreSQL through `pg` connection pools, shared by every service replica.
 *
 * Hot paths are one statement each (data-modifying CTEs over `unnest`ed arrays), so a batch of any size is
 * one round trip and atomic without an explicit transaction. `takeQueued` claims rows with
 * `FOR UPDATE SKIP LOCKED`: only the forwarder that holds an endpoint delivers its tasks, but two claims
 * can never hand out the same task even if two forwarders overlapped for a moment during a failover.
 * A connection failure surfaces as StoreUnavailableError (the API answers 503).
 *
 * In three layers: PgConnection (pg-connection.ts: the pools, migrations, statement helpers), PgTenancy
 * (pg-tenancy.ts: users, groups, invitations, quotas), and here PgStore: endpoints, functions and tasks.
 */
import { randomUUID } from 'node:crypto';
import type { ResultEnvelope, TaskEnvelope } from '../../protocol/messages.js';
import type { ForwarderChannel } from '../../protocol/forwarder-messages.js';
import { toEndpoint, toFunction, toTask, toTaskSummary, toTaskTimes, withUser } from './rows.js';
import { taskTransitions } from './transitions.js';
import { unavailableOr } from './unavailable.js';
import type {
  EndpointMetadata, EndpointRecord, EndpointState, FunctionRecord, NewTask, Store, StoredResults, SubmissionContext, TaskRecord, TaskSummary, Transition,
} from './types.js';
import { QuotaExceededError } from './types.js';
import { toOverrides } from './sqlite-tenancy.js';
import { errorOutcome } from '../../protocol/payload.js';
import { SQL } from './pg-sql.js';
import type { PgStoreOptions, Query, Row } from './pg-connection.js';
import { PgTenancy } from './pg-tenancy.js';

export class PgStore extends PgTenancy implements Store {
  readonly kind = 'postgres' as const;
  /** Where storeResults tells the other replicas what it stored (announceResultsOn), if anywhere. */
  private announce?: { channel: string; sender: string };

  private constructor(url: string, options: PgStoreOptions) {
    super(url, options);
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

  // ---- users: removing one removes everything it owns -----------------------------------------------------

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

  async deleteFunction(id: string): Promise<void> {
    await this.rows('DELETE FROM functions WHERE id = $1', [id]);
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
