/**
 * The store back ends the store and API tests run against: each makes a fresh, empty database and can
 * open it as often as a test likes (to test reopening).
 */
import { test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openStore, type Store } from '../../src/service/store/index.js';
import { ensurePostgres } from '../integration/cluster-setup.js';

export interface TestDatabase {
  /** What `funcx-service start --database` takes: a file path or a postgres:// URL. */
  location: string;
  open(): Promise<Store>;
  drop(): Promise<void>;
}

export interface StoreBackend {
  name: 'sqlite' | 'postgres';
  /** A reason to skip, or false. */
  skip: string | false;
  create(): Promise<TestDatabase>;
}

export function tempSqlite(): { dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'funcx-store-'));
  return { dir, path: join(dir, 'service.db') };
}

export const sqliteBackend: StoreBackend = {
  name: 'sqlite',
  skip: false,
  async create() {
    const { dir, path } = tempSqlite();
    return { location: path, open: () => openStore(path), drop: async () => rmSync(dir, { recursive: true, force: true }) };
  },
};

/** Run one statement as the test role on its own database (CREATE/DROP DATABASE cannot run in a pool's transaction). */
async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: await ensurePostgres() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A database URL like the test server's, naming another database. */
export function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = '/' + name;
  return u.toString();
}

/**
 * A fresh database on the test PostgreSQL (test/cluster/start-postgres.sh, started on first use) per test,
 * dropped after. Starting the server needs root; as another user these tests are skipped, saying so.
 */
export const postgresBackend: StoreBackend = {
  name: 'postgres',
  skip: process.getuid?.() === 0 ? false : 'PostgreSQL tests need root: test/cluster/start-postgres.sh starts the test server (CI runs as root)',
  async create() {
    const url = await ensurePostgres();
    const name = `funcx_t_${randomBytes(6).toString('hex')}`;
    await admin(`CREATE DATABASE ${name}`);
    const location = withDatabase(url, name);
    return { location, open: () => openStore(location), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
  },
};

export const STORE_BACKENDS: readonly StoreBackend[] = [sqliteBackend, postgresBackend];

/** `it(name, fn)` for one back end: a test named "BACKEND: name" on a fresh database, dropped afterwards. */
export function storeTest(backend: StoreBackend): (name: string, fn: (store: Store) => Promise<void>) => void {
  return (name, fn) =>
    test(`${backend.name}: ${name}`, { skip: backend.skip }, async (t) => {
      const db = await backend.create();
      t.after(() => db.drop());
      const store = await db.open();
      t.after(() => store.close());
      await fn(store);
    });
}

/** The back end named by FUNCX_TEST_STORE ('sqlite', the default, or 'postgres'). */
export function selectedBackend(): StoreBackend {
  const name = process.env.FUNCX_TEST_STORE ?? 'sqlite';
  const backend = STORE_BACKENDS.find((b) => b.name === name);
  if (!backend) throw new Error(`FUNCX_TEST_STORE must be sqlite or postgres, not ${JSON.stringify(name)}`);
  return backend;
}

const byHome = new Map<string, Promise<TestDatabase>>();

/**
 * The database a test service with this home uses on the selected back end (FUNCX_TEST_STORE): undefined
 * for SQLite (HOME/service.db, the default), a fresh PostgreSQL database per home otherwise, the same one
 * each time the same home starts again (restart tests). `dropTestDatabases` removes them.
 */
export async function databaseFor(home: string): Promise<string | undefined> {
  const backend = selectedBackend();
  if (backend.name === 'sqlite') return undefined;
  let db = byHome.get(home);
  if (!db) byHome.set(home, (db = backend.create()));
  return (await db).location;
}

/** Environment for a funcx-service child process with this home on the selected back end. */
export async function databaseEnv(home: string): Promise<Record<string, string>> {
  const location = await databaseFor(home);
  return location ? { FUNCX_DATABASE_URL: location } : {};
}

export async function dropTestDatabases(): Promise<void> {
  const dbs = [...byHome.values()];
  byHome.clear();
  await Promise.allSettled(dbs.map(async (db) => (await db).drop()));
}

/**
 * A PostgreSQL server of its own (initdb in a temporary folder, loopback, a free port, trust auth) for
 * tests that stop and start the server itself, so no other test's database goes away. Needs root.
 */
export interface PrivatePostgres {
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

export async function privatePostgres(): Promise<PrivatePostgres> {
  await ensurePostgres(); // installs the packages when missing
  const { execFile } = await import('node:child_process');
  const { readdirSync, chownSync, writeFileSync } = await import('node:fs');
  const { createServer } = await import('node:net');
  const version = readdirSync('/usr/lib/postgresql').sort((x, y) => Number(y) - Number(x))[0];
  const bin = (name: string) => `/usr/lib/postgresql/${version}/bin/${name}`;
  const dir = mkdtempSync(join(tmpdir(), 'funcx-private-pg-'));
  const uid = Number((await runAs('id', ['-u', 'postgres'])).trim());
  const gid = Number((await runAs('id', ['-g', 'postgres'])).trim());
  chownSync(dir, uid, gid);
  const port = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const p = (server.address() as { port: number }).port;
      server.close(() => resolve(p));
    });
  });
  const data = join(dir, 'data');
  await runAs('runuser', ['-u', 'postgres', '--', bin('initdb'), '-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8']);
  writeFileSync(join(data, 'postgresql.auto.conf'), [
    "listen_addresses = '127.0.0.1'", `port = ${port}`, `unix_socket_directories = '${dir}'`, 'fsync = off', 'full_page_writes = off',
  ].join('\n') + '\n');
  const ctl = (...args: string[]) => runAs('runuser', ['-u', 'postgres', '--', bin('pg_ctl'), '-D', data, '-w', '-t', '60', ...args]);
  const start = async () => void (await ctl('-l', join(dir, 'postgres.log'), 'start'));
  const stop = async () => void (await ctl('-m', 'fast', 'stop'));
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    destroy: async () => {
      await stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };

  function runAs(cmd: string, args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(cmd, args, { timeout: 120_000, cwd: '/' }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || stdout || err.message}`)) : resolve(stdout)));
    });
  }
}
