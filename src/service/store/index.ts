/**
 * The service's store: the `Store` interface (types.ts) and `openStore`, which picks the back end from
 * where the state lives: a file path → SQLite (the embedded default), `postgres://…` → PostgreSQL.
 */
import { PgStore } from './postgres.js';
import type { PgStoreOptions } from './pg-connection.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './types.js';

export * from './types.js';
export { hashToken, newToken } from './tokens.js';
export { SqliteStore } from './sqlite.js';
export { PgStore } from './postgres.js';
export type { PgStoreOptions } from './pg-connection.js';
export { StoreUnavailableError, isConnectionError } from './unavailable.js';

/** True when `location` names a PostgreSQL database rather than a SQLite file. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/** Open the store at `location` (a SQLite file path or a postgres:// URL) and bring its schema up to date. */
export async function openStore(location: string, options: PgStoreOptions = {}): Promise<Store> {
  return isPostgresUrl(location) ? PgStore.open(location, options) : SqliteStore.open(location);
}
