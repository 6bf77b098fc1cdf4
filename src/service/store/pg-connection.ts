/**
 * The PostgreSQL store's connections: two `pg` pools on one database, one planning each statement with its
 * values and one planning unique-key lookups once (NAMED in pg-sql.ts says which statement runs where), the
 * migrations, and the helpers every statement goes through (a connection failure surfaces as
 * StoreUnavailableError, the API answers 503). PgTenancy and PgStore build on it.
 */
import pg from 'pg';
import { MIGRATIONS_TABLE, POSTGRES_MIGRATIONS, pending } from './migrations.js';
import { unavailableOr } from './unavailable.js';
import type { QuotaName } from './types.js';
import { QuotaExceededError } from './types.js';
import { NAMED, QUOTA_COUNT, type StatementName } from './pg-sql.js';

/** A query in a transaction; `name` makes it a prepared statement, kept by the connection. */
export type Query = (text: string, values?: unknown[], name?: string) => Promise<Row[]>;


// BIGINT columns hold epoch ms and sequence numbers, all well inside 2^53: read them as numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export type Row = Record<string, unknown>;

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

/** The pools and the statement helpers of a PostgreSQL store. */
export class PgConnection {
  readonly pool: pg.Pool;
  /** The connections for lookups by unique keys, planned once (PG_GENERIC_SESSION_OPTIONS). */
  protected readonly lookups: pg.Pool;
  private closing?: Promise<void>;

  protected constructor(readonly url: string, options: PgStoreOptions) {
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

  /** Apply missing migrations, each in a transaction under an advisory lock (replicas may start together). */
  protected async migrate(): Promise<void> {
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
  protected async rows(text: string, values: unknown[] = []): Promise<Row[]> {
    try {
      return (await this.pool.query({ text, values })).rows as Row[];
    } catch (err) {
      return unavailableOr(err);
    }
  }

  protected async row(text: string, values: unknown[] = []): Promise<Row | undefined> {
    return (await this.rows(text, values))[0];
  }

  /** Run a named statement on the pool that plans it as NAMED says (custom or generic). */
  protected async named(name: StatementName, values: unknown[]): Promise<Row[]> {
    const { plan, text } = NAMED[name];
    try {
      return (await (plan === 'generic' ? this.lookups : this.pool).query({ name, text, values })).rows as Row[];
    } catch (err) {
      return unavailableOr(err);
    }
  }

  /** Run `fn` in one transaction on one connection. */
  protected async tx<T>(fn: (q: Query) => Promise<T>): Promise<T> {
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
  protected async checkQuota(q: Query, quota: QuotaName, owner: string, adding: number, limit: number): Promise<void> {
    await q('SELECT pg_advisory_xact_lock(hashtext($1))', [`funcx-quota:${quota}:${owner}`], 'quota-lock');
    const used = (await q(QUOTA_COUNT[quota], [owner], `quota-${quota}`))[0].n as number;
    if (used + adding > limit) throw new QuotaExceededError(quota, used, limit, adding);
  }

  async schemaVersion(): Promise<number> {
    return (await this.row(`SELECT COALESCE(MAX(version), 0)::int AS v FROM ${MIGRATIONS_TABLE}`))!.v as number;
  }
}
