/**
 * Versioned schema migrations, one list per back end, the same versions in both. A database records what
 * it has applied in `schema_migrations`; at start the store applies the missing ones in order, each in
 * its own transaction, and refuses a database migrated by a newer funcx-service.
 *
 * Migration 1 is the schema the service had before migrations existed; its `IF NOT EXISTS` makes it a
 * no-op on such a database, which thereby gets version 1.
 */
import { FuncxError } from '../../errors.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, token_hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS groups (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, owner TEXT NOT NULL REFERENCES users(id));
CREATE TABLE IF NOT EXISTS group_members (group_id TEXT NOT NULL REFERENCES groups(id), user_id TEXT NOT NULL REFERENCES users(id),
  PRIMARY KEY (group_id, user_id));
CREATE TABLE IF NOT EXISTS endpoints (id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT NOT NULL REFERENCES users(id),
  public_key TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'Inactive', last_seen INTEGER, group_id TEXT REFERENCES groups(id),
  ports TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS functions (id TEXT PRIMARY KEY, owner TEXT NOT NULL REFERENCES users(id), name TEXT NOT NULL,
  source TEXT NOT NULL, group_id TEXT REFERENCES groups(id), created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, endpoint TEXT NOT NULL,
  function TEXT, owner TEXT NOT NULL, state TEXT NOT NULL, failed INTEGER, result BLOB,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
-- The forwarder's queue and its delivered-but-unfinished set are partial indexes: a task has an entry only
-- while it is in that state, so state changes elsewhere cost nothing here.
CREATE INDEX IF NOT EXISTS tasks_queued ON tasks(endpoint, seq) WHERE state = 'waiting-for-endpoint';
CREATE INDEX IF NOT EXISTS tasks_in_flight ON tasks(endpoint, seq) WHERE state IN ('waiting-for-nodes', 'running');
-- Payloads apart, so that state updates rewrite a small row.
CREATE TABLE IF NOT EXISTS task_payloads (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS task_transitions (task INTEGER NOT NULL, state TEXT NOT NULL, actor TEXT NOT NULL, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS transitions_by_task ON task_transitions(task);
`,
  },
  {
    version: 2,
    name: 'per-user quotas: counts by owner',
    sql: `
CREATE INDEX IF NOT EXISTS tasks_unfinished_by_owner ON tasks(owner) WHERE state NOT IN ('success', 'failed');
CREATE INDEX IF NOT EXISTS functions_by_owner ON functions(owner);
CREATE INDEX IF NOT EXISTS endpoints_by_owner ON endpoints(owner);
`,
  },
  {
    version: 3,
    name: 'endpoints.replica: the service replica whose forwarder serves the endpoint',
    sql: `ALTER TABLE endpoints ADD COLUMN replica TEXT;`,
  },
  {
    version: 4,
    name: 'endpoint metadata (username, email from the global options)',
    sql: `ALTER TABLE endpoints ADD COLUMN metadata TEXT;`,
  },
  {
    version: 5,
    name: 'users can be disabled',
    sql: `ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;`,
  },
  {
    version: 6,
    name: 'group invitations',
    sql: `CREATE TABLE IF NOT EXISTS group_invites (group_id TEXT NOT NULL REFERENCES groups(id), user_id TEXT NOT NULL REFERENCES users(id),
  created_at INTEGER NOT NULL, PRIMARY KEY (group_id, user_id));`,
  },
  {
    version: 7,
    name: 'task transitions on the task row: one write per transition (transitions.ts)',
    sql: `ALTER TABLE tasks ADD COLUMN delivered_at INTEGER;
ALTER TABLE tasks ADD COLUMN running_at INTEGER;`,
  },
  {
    version: 8,
    name: 'named API tokens, per-user quota overrides, stored result bytes per user',
    sql: `
CREATE TABLE IF NOT EXISTS api_tokens (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), name TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL, expires_at INTEGER, UNIQUE (user_id, name));
CREATE TABLE IF NOT EXISTS user_quotas (user_id TEXT PRIMARY KEY REFERENCES users(id), tasks INTEGER, functions INTEGER,
  endpoints INTEGER, result_bytes INTEGER);
-- Kept by triggers in the transaction that stores or deletes a result, so the store's task path is unchanged.
CREATE TABLE IF NOT EXISTS user_usage (user_id TEXT PRIMARY KEY, result_bytes INTEGER NOT NULL DEFAULT 0);
INSERT OR IGNORE INTO user_usage (user_id, result_bytes)
  SELECT owner, SUM(LENGTH(result)) FROM tasks WHERE result IS NOT NULL GROUP BY owner;
CREATE TRIGGER IF NOT EXISTS tasks_result_bytes_insert AFTER INSERT ON tasks WHEN NEW.result IS NOT NULL BEGIN
  INSERT INTO user_usage (user_id, result_bytes) VALUES (NEW.owner, LENGTH(NEW.result))
    ON CONFLICT (user_id) DO UPDATE SET result_bytes = result_bytes + excluded.result_bytes;
END;
CREATE TRIGGER IF NOT EXISTS tasks_result_bytes_update AFTER UPDATE OF result ON tasks
  WHEN COALESCE(LENGTH(NEW.result), 0) != COALESCE(LENGTH(OLD.result), 0) BEGIN
  INSERT INTO user_usage (user_id, result_bytes) VALUES (NEW.owner, COALESCE(LENGTH(NEW.result), 0) - COALESCE(LENGTH(OLD.result), 0))
    ON CONFLICT (user_id) DO UPDATE SET result_bytes = result_bytes + excluded.result_bytes;
END;
CREATE TRIGGER IF NOT EXISTS tasks_result_bytes_delete AFTER DELETE ON tasks WHEN OLD.result IS NOT NULL BEGIN
  UPDATE user_usage SET result_bytes = result_bytes - LENGTH(OLD.result) WHERE user_id = OLD.owner;
END;
`,
  },
  {
    version: 9,
    name: 'quotas on groups and invitations: per-user overrides, counts by owner and by invited user',
    sql: `
ALTER TABLE user_quotas ADD COLUMN groups_owned INTEGER;
ALTER TABLE user_quotas ADD COLUMN invitations INTEGER;
ALTER TABLE user_quotas ADD COLUMN inbox INTEGER;
CREATE INDEX IF NOT EXISTS groups_by_owner ON groups(owner);
CREATE INDEX IF NOT EXISTS group_invites_by_user ON group_invites(user_id);
`,
  },
  {
    version: 10,
    name: 'a quota on the bytes of function sources: per-user overrides, bytes per owner kept by triggers',
    sql: `
ALTER TABLE user_quotas ADD COLUMN function_bytes INTEGER;
ALTER TABLE user_usage ADD COLUMN function_bytes INTEGER NOT NULL DEFAULT 0;
INSERT INTO user_usage (user_id, function_bytes)
  SELECT owner, SUM(LENGTH(CAST(source AS BLOB))) FROM functions WHERE true GROUP BY owner
  ON CONFLICT (user_id) DO UPDATE SET function_bytes = excluded.function_bytes;
-- A source is never updated (only its group is), so insert and delete are all there is to count.
CREATE TRIGGER IF NOT EXISTS functions_bytes_insert AFTER INSERT ON functions BEGIN
  INSERT INTO user_usage (user_id, function_bytes) VALUES (NEW.owner, LENGTH(CAST(NEW.source AS BLOB)))
    ON CONFLICT (user_id) DO UPDATE SET function_bytes = function_bytes + excluded.function_bytes;
END;
CREATE TRIGGER IF NOT EXISTS functions_bytes_delete AFTER DELETE ON functions BEGIN
  UPDATE user_usage SET function_bytes = function_bytes - LENGTH(CAST(OLD.source AS BLOB)) WHERE user_id = OLD.owner;
END;
`,
  },
  {
    version: 11,
    name: 'PostgreSQL only (result bytes summed per statement, tasks inserted under their quota in one call): nothing on SQLite',
    sql: 'SELECT 1;',
  },
  {
    version: 12,
    name: 'result bytes counted once per owner and batch of results, not by a trigger per task',
    sql: `
-- A task's first result is counted by the statement that writes it, one upsert per owner and batch
-- (SqliteBatches.finishAll, SqliteTaskPath.failEndpointTasks), not one upsert of the owner's user_usage row per
-- task (a fifth of a result batch's time). Only unfinished tasks get a result, and they have none yet; a
-- result written over another would still be counted here.
DROP TRIGGER IF EXISTS tasks_result_bytes_update;
CREATE TRIGGER tasks_result_bytes_update AFTER UPDATE OF result ON tasks
  WHEN OLD.result IS NOT NULL AND COALESCE(LENGTH(NEW.result), 0) != LENGTH(OLD.result) BEGIN
  INSERT INTO user_usage (user_id, result_bytes) VALUES (NEW.owner, COALESCE(LENGTH(NEW.result), 0) - LENGTH(OLD.result))
    ON CONFLICT (user_id) DO UPDATE SET result_bytes = result_bytes + excluded.result_bytes;
END;
`,
  },
  {
    version: 13,
    name: 'unfinished tasks counted per owner in user_usage, not by a partial index',
    sql: `
-- The quota on unfinished tasks reads one counter per owner. The statements that move tasks into or out of
-- the unfinished states keep it, one upsert per owner and batch, in their own transaction (SqliteBatches.insert
-- and finishAll, SqliteTaskPath.failEndpointTasks; removeUser deletes the owner's row with their tasks). The
-- index it replaces was maintained on every insert and every state change (delivery too: its WHERE names
-- state), ~2 µs of the ~11 µs a task that insert, delivery and results took (test/bench/store-path.ts).
-- Triggers keeping the same count were measured too: they gave back half of that (a trigger program per row,
-- and the one on UPDATE OF state also runs on every delivery and start).
ALTER TABLE user_usage ADD COLUMN unfinished_tasks INTEGER NOT NULL DEFAULT 0;
INSERT INTO user_usage (user_id, unfinished_tasks)
  SELECT owner, COUNT(*) FROM tasks WHERE state NOT IN ('success', 'failed') GROUP BY owner
  ON CONFLICT (user_id) DO UPDATE SET unfinished_tasks = excluded.unfinished_tasks;
DROP INDEX IF EXISTS tasks_unfinished_by_owner;
`,
  },
];

/** The same schema in PostgreSQL's types; `seq` and transition ids come from identity columns. */
export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, token_hash TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, owner TEXT NOT NULL REFERENCES users(id));
CREATE TABLE IF NOT EXISTS group_members (group_id TEXT NOT NULL REFERENCES groups(id), user_id TEXT NOT NULL REFERENCES users(id),
  PRIMARY KEY (group_id, user_id));
CREATE TABLE IF NOT EXISTS endpoints (id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT NOT NULL REFERENCES users(id),
  public_key TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'Inactive', last_seen BIGINT, group_id TEXT REFERENCES groups(id),
  ports TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS functions (id TEXT PRIMARY KEY, owner TEXT NOT NULL REFERENCES users(id), name TEXT NOT NULL,
  source TEXT NOT NULL, group_id TEXT REFERENCES groups(id), created_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id TEXT NOT NULL UNIQUE, endpoint TEXT NOT NULL,
  function TEXT, owner TEXT NOT NULL, state TEXT NOT NULL, failed BOOLEAN, result BYTEA,
  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS tasks_queued ON tasks(endpoint, seq) WHERE state = 'waiting-for-endpoint';
CREATE INDEX IF NOT EXISTS tasks_in_flight ON tasks(endpoint, seq) WHERE state IN ('waiting-for-nodes', 'running');
CREATE TABLE IF NOT EXISTS task_payloads (seq BIGINT PRIMARY KEY, payload BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS task_transitions (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, task BIGINT NOT NULL,
  state TEXT NOT NULL, actor TEXT NOT NULL, at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS transitions_by_task ON task_transitions(task);
`,
  },
  {
    version: 2,
    name: 'per-user quotas: counts by owner',
    sql: `
CREATE INDEX IF NOT EXISTS tasks_unfinished_by_owner ON tasks(owner) WHERE state NOT IN ('success', 'failed');
CREATE INDEX IF NOT EXISTS functions_by_owner ON functions(owner);
CREATE INDEX IF NOT EXISTS endpoints_by_owner ON endpoints(owner);
`,
  },
  {
    version: 3,
    name: 'endpoints.replica: the service replica whose forwarder serves the endpoint',
    sql: `ALTER TABLE endpoints ADD COLUMN IF NOT EXISTS replica TEXT;`,
  },
  {
    version: 4,
    name: 'endpoint metadata (username, email from the global options)',
    sql: `ALTER TABLE endpoints ADD COLUMN IF NOT EXISTS metadata TEXT;`,
  },
  {
    version: 5,
    name: 'users can be disabled',
    sql: `ALTER TABLE users ADD COLUMN IF NOT EXISTS disabled BOOLEAN NOT NULL DEFAULT false;`,
  },
  {
    version: 6,
    name: 'group invitations',
    sql: `CREATE TABLE IF NOT EXISTS group_invites (group_id TEXT NOT NULL REFERENCES groups(id), user_id TEXT NOT NULL REFERENCES users(id),
  created_at BIGINT NOT NULL, PRIMARY KEY (group_id, user_id));`,
  },
  {
    version: 7,
    name: 'task transitions on the task row: one write per transition (transitions.ts)',
    sql: `ALTER TABLE tasks ADD COLUMN IF NOT EXISTS delivered_at BIGINT;
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS running_at BIGINT;`,
  },
  {
    version: 8,
    name: 'named API tokens, per-user quota overrides, stored result bytes per user',
    sql: `
CREATE TABLE IF NOT EXISTS api_tokens (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), name TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL, expires_at BIGINT, UNIQUE (user_id, name));
CREATE TABLE IF NOT EXISTS user_quotas (user_id TEXT PRIMARY KEY REFERENCES users(id), tasks BIGINT, functions BIGINT,
  endpoints BIGINT, result_bytes BIGINT);
CREATE TABLE IF NOT EXISTS user_usage (user_id TEXT PRIMARY KEY, result_bytes BIGINT NOT NULL DEFAULT 0);
INSERT INTO user_usage (user_id, result_bytes)
  SELECT owner, SUM(OCTET_LENGTH(result)) FROM tasks WHERE result IS NOT NULL GROUP BY owner ON CONFLICT DO NOTHING;
CREATE OR REPLACE FUNCTION funcx_result_bytes() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  delta BIGINT;
  who TEXT;
BEGIN
  IF TG_OP = 'DELETE' THEN
    delta := -COALESCE(OCTET_LENGTH(OLD.result), 0); who := OLD.owner;
  ELSIF TG_OP = 'INSERT' THEN
    delta := COALESCE(OCTET_LENGTH(NEW.result), 0); who := NEW.owner;
  ELSE
    delta := COALESCE(OCTET_LENGTH(NEW.result), 0) - COALESCE(OCTET_LENGTH(OLD.result), 0); who := NEW.owner;
  END IF;
  IF delta <> 0 THEN
    INSERT INTO user_usage (user_id, result_bytes) VALUES (who, delta)
      ON CONFLICT (user_id) DO UPDATE SET result_bytes = user_usage.result_bytes + EXCLUDED.result_bytes;
  END IF;
  RETURN NULL;
END
$fn$;
DROP TRIGGER IF EXISTS tasks_result_bytes_insert ON tasks;
CREATE TRIGGER tasks_result_bytes_insert AFTER INSERT ON tasks FOR EACH ROW WHEN (NEW.result IS NOT NULL) EXECUTE FUNCTION funcx_result_bytes();
DROP TRIGGER IF EXISTS tasks_result_bytes_update ON tasks;
CREATE TRIGGER tasks_result_bytes_update AFTER UPDATE OF result ON tasks FOR EACH ROW
  WHEN (OLD.result IS DISTINCT FROM NEW.result) EXECUTE FUNCTION funcx_result_bytes();
DROP TRIGGER IF EXISTS tasks_result_bytes_delete ON tasks;
CREATE TRIGGER tasks_result_bytes_delete AFTER DELETE ON tasks FOR EACH ROW WHEN (OLD.result IS NOT NULL) EXECUTE FUNCTION funcx_result_bytes();
`,
  },
  {
    version: 9,
    name: 'quotas on groups and invitations: per-user overrides, counts by owner and by invited user',
    sql: `
ALTER TABLE user_quotas ADD COLUMN IF NOT EXISTS groups_owned BIGINT;
ALTER TABLE user_quotas ADD COLUMN IF NOT EXISTS invitations BIGINT;
ALTER TABLE user_quotas ADD COLUMN IF NOT EXISTS inbox BIGINT;
CREATE INDEX IF NOT EXISTS groups_by_owner ON groups(owner);
CREATE INDEX IF NOT EXISTS group_invites_by_user ON group_invites(user_id);
`,
  },
  {
    version: 10,
    name: 'a quota on the bytes of function sources: per-user overrides, bytes per owner kept by triggers',
    sql: `
ALTER TABLE user_quotas ADD COLUMN IF NOT EXISTS function_bytes BIGINT;
ALTER TABLE user_usage ADD COLUMN IF NOT EXISTS function_bytes BIGINT NOT NULL DEFAULT 0;
INSERT INTO user_usage (user_id, function_bytes)
  SELECT owner, SUM(OCTET_LENGTH(source)) FROM functions GROUP BY owner
  ON CONFLICT (user_id) DO UPDATE SET function_bytes = EXCLUDED.function_bytes;
CREATE OR REPLACE FUNCTION funcx_function_bytes() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP = 'DELETE' THEN
    UPDATE user_usage SET function_bytes = function_bytes - OCTET_LENGTH(OLD.source) WHERE user_id = OLD.owner;
  ELSE
    INSERT INTO user_usage (user_id, function_bytes) VALUES (NEW.owner, OCTET_LENGTH(NEW.source))
      ON CONFLICT (user_id) DO UPDATE SET function_bytes = user_usage.function_bytes + EXCLUDED.function_bytes;
  END IF;
  RETURN NULL;
END
$fn$;
DROP TRIGGER IF EXISTS functions_bytes_insert ON functions;
CREATE TRIGGER functions_bytes_insert AFTER INSERT ON functions FOR EACH ROW EXECUTE FUNCTION funcx_function_bytes();
DROP TRIGGER IF EXISTS functions_bytes_delete ON functions;
CREATE TRIGGER functions_bytes_delete AFTER DELETE ON functions FOR EACH ROW EXECUTE FUNCTION funcx_function_bytes();
`,
  },
  {
    version: 11,
    name: 'result bytes summed per statement, tasks inserted under their quota in one call',
    sql: `
-- Stored result bytes per owner, added up once per UPDATE statement (transition tables) and not by one upsert
-- of the owner's user_usage row per task: a batch of 333 results was 333 new versions of that one row, half
-- the statement's time. Owners in order, so two statements never wait for each other's rows crosswise.
CREATE OR REPLACE FUNCTION funcx_result_bytes_per_statement() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  INSERT INTO user_usage (user_id, result_bytes)
    SELECT who, SUM(delta) FROM (
      SELECT n.owner AS who, OCTET_LENGTH(n.result)::bigint AS delta FROM new_rows n WHERE n.result IS NOT NULL
      UNION ALL SELECT o.owner, -OCTET_LENGTH(o.result)::bigint FROM old_rows o WHERE o.result IS NOT NULL) d
    GROUP BY who HAVING SUM(delta) <> 0 ORDER BY who
  ON CONFLICT (user_id) DO UPDATE SET result_bytes = user_usage.result_bytes + EXCLUDED.result_bytes;
  RETURN NULL;
END
$fn$;
DROP TRIGGER IF EXISTS tasks_result_bytes_update ON tasks;
CREATE TRIGGER tasks_result_bytes_update AFTER UPDATE ON tasks REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION funcx_result_bytes_per_statement();
-- Tasks inserted under the owner's quota of unfinished tasks in one round trip (was six: a connection, BEGIN,
-- the lock, the count, the insert, COMMIT). The lock is the one PgStore.checkQuota takes (one writer per
-- owner and quota), held until the calling statement commits; the count after it sees every insert committed
-- before the lock was granted, because each statement of a VOLATILE function takes a fresh snapshot. Returns
-- one row naming the owner, the count and the tasks asked when that would pass the limit (nothing written),
-- else no row.
CREATE OR REPLACE FUNCTION funcx_insert_tasks(p_ids text[], p_endpoints text[], p_functions text[], p_owners text[],
    p_payloads bytea[], p_now bigint, p_limit bigint)
  RETURNS TABLE (quota_owner text, quota_used bigint, quota_adding bigint) LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
  o record;
  n bigint;
BEGIN
  IF p_limit IS NOT NULL THEN
    FOR o IN SELECT x.who, count(*) AS k FROM unnest(p_owners) AS x(who) GROUP BY x.who ORDER BY x.who LOOP
      PERFORM pg_advisory_xact_lock(hashtext('funcx-quota:tasks:' || o.who));
      SELECT count(*) INTO n FROM tasks t WHERE t.owner = o.who AND t.state NOT IN ('success', 'failed');
      IF n + o.k > p_limit THEN
        quota_owner := o.who; quota_used := n; quota_adding := o.k;
        RETURN NEXT;
        RETURN;
      END IF;
    END LOOP;
  END IF;
  WITH input AS (
      SELECT * FROM unnest(p_ids, p_endpoints, p_functions, p_owners, p_payloads) WITH ORDINALITY AS u(id, endpoint, function, owner, payload, ord)),
    ins AS (INSERT INTO tasks (id, endpoint, function, owner, state, created_at, updated_at)
      SELECT id, endpoint, function, owner, 'waiting-for-endpoint', p_now, p_now FROM input ORDER BY ord RETURNING seq, id)
  INSERT INTO task_payloads (seq, payload) SELECT ins.seq, input.payload FROM ins JOIN input USING (id);
  RETURN;
END
$fn$;
`,
  },
  {
    version: 12,
    name: 'SQLite only (result bytes counted once per owner and batch): nothing on PostgreSQL',
    sql: 'SELECT 1;',
  },
  {
    version: 13,
    name: 'SQLite only (unfinished tasks counted per owner, not by a partial index): nothing on PostgreSQL',
    sql: 'SELECT 1;',
  },
];

/** The table each back end keeps its applied versions in. */
export const MIGRATIONS_TABLE = 'schema_migrations';

/** The migrations a database at `current` still needs; a database newer than this code is refused. */
export function pending(migrations: readonly Migration[], current: number, where: string): Migration[] {
  const latest = migrations.length === 0 ? 0 : migrations[migrations.length - 1].version;
  if (current > latest) {
    throw new FuncxError(
      'SCHEMA_TOO_NEW',
      `${where} is at schema version ${current}, newer than this funcx-service knows (${latest})`,
      ['upgrade funcx-service on this machine, or point it at another database'],
    );
  }
  return migrations.filter((m) => m.version > current);
}
