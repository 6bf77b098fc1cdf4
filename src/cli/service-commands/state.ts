/**
 * Where `funcx-service` keeps its state: FUNCX_SERVICE_HOME (default ~/.funcx-service) with service.pid and
 * service.log, and the database (--database, FUNCX_DATABASE_URL, else HOME/service.db); and the commands'
 * way to work on one user in that database.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { FuncxError } from '../../errors.js';
import { isPostgresUrl, openStore, type Store, type User } from '../../service/store/index.js';

export const serviceHome = (): string => process.env.FUNCX_SERVICE_HOME || join(homedir(), '.funcx-service');
export const pidPath = (): string => join(serviceHome(), 'service.pid');
export const logPath = (): string => join(serviceHome(), 'service.log');

/** Where the state lives: --database, else FUNCX_DATABASE_URL, else HOME/service.db. */
export function database(flag: string | undefined): string {
  const location = flag || process.env.FUNCX_DATABASE_URL || join(serviceHome(), 'service.db');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location) && !isPostgresUrl(location)) {
    throw new FuncxError('CONFIG', `--database: "${location.split(':')[0]}:" is not a database this service knows; give a file path or postgres://USER:PASSWORD@HOST:PORT/DATABASE`);
  }
  return location;
}

/** A database location fit for a message: no password. */
export function describe(location: string): string {
  if (!isPostgresUrl(location)) return location;
  try {
    const u = new URL(location);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://…';
  }
}

/** Run `fn` on the user named `name` in the service's database (the running service sees the change at once). */
export async function withUser(name: string, flags: { database?: string }, fn: (store: Store, user: User) => Promise<void>): Promise<void> {
  const store = await openStore(database(flags.database));
  try {
    const user = await store.userByName(name);
    if (!user) throw new FuncxError('NO_SUCH_USER', `no user named ${name}`);
    await fn(store, user);
  } finally {
    await store.close();
  }
}
