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
