/**
 * The store's behaviour, the same tests on every back end (test/helpers/store-backends.ts), then what is
 * particular to SQLite (files, modes) and to migrations.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { createServer, type AddressInfo } from 'node:net';
import { hashToken, openStore, PgStore, SqliteStore, StoreUnavailableError, type Store } from '../../src/service/store/index.js';
import { POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS } from '../../src/service/store/migrations.js';
import { postgresBackend, STORE_BACKENDS, tempSqlite } from '../helpers/store-backends.js';

const KEY = 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7';

async function seed(store: Store) {
  const { user } = await store.createUser('alice');
  const endpoint = await store.saveEndpoint({ id: randomUUID(), name: 'ep', owner: user.id, publicKey: KEY, group: null });
  const tasks = Array.from({ length: 5 }, (_, i) => ({ id: randomUUID(), endpoint: endpoint.id, function: null, owner: user.id, payload: Buffer.from([i]) }));
  await store.insertTasks(tasks, 'user:alice');
  return { user, endpoint, tasks };
}

for (const backend of STORE_BACKENDS) {
  const it = (name: string, fn: (store: Store, reopen: () => Promise<Store>) => Promise<void>) =>
    test(`${backend.name}: ${name}`, { skip: backend.skip }, async (t) => {
      const db = await backend.create();
      t.after(() => db.drop());
      const store = await db.open();
      t.after(() => store.close());
      await fn(store, db.open);
    });

  it('tokens: fx_ + 32 random bytes, found by hash, a wrong one finds nobody', async (store) => {
    const { user, token } = await store.createUser('alice');
    assert.match(token, /^fx_[A-Za-z0-9_-]{43}$/);
    assert.equal((await store.userByToken(token))?.id, user.id);
    assert.equal(await store.userByToken(token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')), undefined);
    assert.notEqual((await store.createUser('bob')).token, token);
    await assert.rejects(store.createUser('alice'), 'user names are unique');
  });

  it('tasks queue oldest first; taking marks them delivered with a transition', async (store) => {
    const { endpoint, tasks } = await seed(store);
    assert.equal(await store.countQueued(endpoint.id), 5);
    const first = await store.takeQueued(endpoint.id, 2);
    assert.deepEqual(first.map((t) => t.id), tasks.slice(0, 2).map((t) => t.id));
    assert.deepEqual([...first[1].payload], [1]);
    assert.equal((await store.task(tasks[0].id))?.state, 'waiting-for-nodes');
    assert.equal((await store.task(tasks[2].id))?.state, 'waiting-for-endpoint');
    assert.deepEqual((await store.transitions(tasks[0].id)).map((t) => [t.state, t.actor]), [
      ['received', 'user:alice'],
      ['waiting-for-endpoint', 'service'],
      ['waiting-for-nodes', 'forwarder'],
    ]);
    assert.equal((await store.takeQueued(endpoint.id, 100)).length, 3);
    assert.equal((await store.takeQueued(endpoint.id, 100)).length, 0);
  });

  it("a task taken for delivery names its submitter (u) only when that is not the endpoint's owner", async (store) => {
    const { endpoint, tasks } = await seed(store);
    const { user: bob } = await store.createUser('bob');
    const theirs = { id: randomUUID(), endpoint: endpoint.id, function: null, owner: bob.id, payload: Buffer.from([9]) };
    await store.insertTasks([theirs], 'user:bob');
    const taken = await store.takeQueued(endpoint.id, 100);
    assert.deepEqual(taken.map((t) => [t.id, t.u]), [...tasks.map((t) => [t.id, undefined]), [theirs.id, bob.id]]);
  });

  it('requeue puts delivered unfinished tasks back first; finished ones stay finished', async (store) => {
    const { endpoint, tasks } = await seed(store);
    await store.takeQueued(endpoint.id, 3);
    assert.equal(await store.markRunning(endpoint.id, [tasks[1].id, tasks[4].id]), 1, 'only a delivered task can start running');
    assert.equal((await store.task(tasks[1].id))?.state, 'running');
    await store.storeResults(endpoint.id, [{ id: tasks[0].id, failed: false, payload: Buffer.from('ok') }]);
    assert.equal(await store.requeueInFlight(endpoint.id), 2);
    assert.deepEqual((await store.takeQueued(endpoint.id, 10)).map((t) => t.id), [tasks[1].id, tasks[2].id, tasks[3].id, tasks[4].id]);
    assert.equal((await store.task(tasks[0].id))?.state, 'success');
  });

  it("results are stored once; duplicates and other endpoints' tasks are dropped", async (store) => {
    const { endpoint, tasks, user } = await seed(store);
    const other = await store.saveEndpoint({ id: randomUUID(), name: 'other', owner: user.id, publicKey: KEY, group: null });
    await store.takeQueued(endpoint.id, 5);
    const first = await store.storeResults(endpoint.id, [
      { id: tasks[0].id, failed: false, payload: Buffer.from('first') },
      { id: tasks[1].id, failed: true, payload: Buffer.from('boom') },
    ]);
    const { at, ...firstCounts } = first;
    assert.deepEqual(firstCounts, { stored: [tasks[0].id, tasks[1].id], duplicates: 0, unknown: 0 });
    assert.equal(at, (await store.task(tasks[0].id))?.updatedAt, '`at` is the updated_at written (what a woken long-poll answers with)');
    const again = await store.storeResults(endpoint.id, [{ id: tasks[0].id, failed: false, payload: Buffer.from('second') }]);
    assert.deepEqual({ ...again, at: undefined }, { stored: [], duplicates: 1, unknown: 0, at: undefined });
    assert.equal((await store.task(tasks[0].id))?.result?.toString(), 'first');
    const foreign = await store.storeResults(other.id, [{ id: tasks[2].id, failed: false, payload: Buffer.from('x') }]);
    assert.deepEqual({ ...foreign, at: undefined }, { stored: [], duplicates: 0, unknown: 1, at: undefined });
    assert.equal((await store.task(tasks[2].id))?.state, 'waiting-for-nodes');
    const failed = (await store.task(tasks[1].id))!;
    assert.equal(failed.state, 'failed');
    assert.equal(failed.failed, true);
    assert.equal((await store.transitions(tasks[0].id)).filter((t) => t.state === 'success').length, 1);
    const many = await store.tasks([tasks[0].id, tasks[3].id, randomUUID()]);
    assert.deepEqual([...many.keys()].sort(), [tasks[0].id, tasks[3].id].sort());
    assert.equal(many.get(tasks[3].id)?.result, null);
    assert.equal((await store.tasks([])).size, 0);
  });

  it('groups: the owner and members belong; endpoints shared with a group are listed for members', async (store) => {
    const alice = (await store.createUser('alice')).user;
    const bob = (await store.createUser('bob')).user;
    const carol = (await store.createUser('carol')).user;
    const g = await store.createGroup('lab', alice.id);
    await store.addGroupMember(g.id, bob.id);
    await store.addGroupMember(g.id, bob.id);
    assert.equal(await store.isGroupMember(g.id, alice.id), true);
    assert.equal(await store.isGroupMember(g.id, bob.id), true);
    assert.equal(await store.isGroupMember(g.id, carol.id), false);
    assert.equal((await store.group('lab'))?.id, g.id);
    assert.equal((await store.group(g.id))?.name, 'lab');
    await store.saveEndpoint({ id: randomUUID(), name: 'shared', owner: alice.id, publicKey: KEY, group: g.id });
    await store.saveEndpoint({ id: randomUUID(), name: 'private', owner: alice.id, publicKey: KEY, group: null });
    assert.deepEqual((await store.endpointsFor(alice.id)).map((e) => e.name), ['private', 'shared']);
    assert.deepEqual((await store.endpointsFor(bob.id)).map((e) => e.name), ['shared']);
    assert.deepEqual(await store.endpointsFor(carol.id), []);
    assert.deepEqual((await store.groupsOf(bob.id)).map((x) => [x.name, x.members]), [['lab', ['bob']]]);
    const fn = await store.createFunction({ owner: alice.id, name: 'f', source: '(x) => x', group: g.id });
    assert.deepEqual(await store.function(fn.id), fn);
    assert.equal(await store.function(randomUUID()), undefined);
  });

  it('everything survives closing and reopening', async (store, reopen) => {
    const { endpoint, tasks } = await seed(store);
    await store.setEndpointPorts(endpoint.id, { tasks: 1001, results: 1002, commands: 1003 });
    await store.setEndpointState(endpoint.id, 'Active', 1234);
    await store.saveEndpoint({ id: endpoint.id, name: 'renamed', owner: endpoint.owner, publicKey: KEY, group: null });
    await store.takeQueued(endpoint.id, 1);
    await store.close();
    await store.close();
    const reopened = await reopen();
    try {
      assert.equal(await reopened.countQueued(endpoint.id), 4);
      assert.equal((await reopened.task(tasks[0].id))?.state, 'waiting-for-nodes');
      const e = (await reopened.endpoint(endpoint.id))!;
      assert.deepEqual(e.ports, { tasks: 1001, results: 1002, commands: 1003 });
      assert.equal(e.lastSeen, 1234);
      assert.equal(e.state, 'Active');
      assert.equal(e.name, 'renamed');
      assert.equal(e.createdAt, endpoint.createdAt);
      assert.equal(await reopened.schemaVersion(), SQLITE_MIGRATIONS[SQLITE_MIGRATIONS.length - 1].version);
    } finally {
      await reopened.close();
    }
  });
}

test('sqlite: the token never appears in the database files, only its SHA-256 hash', async () => {
  const { dir, path } = tempSqlite();
  const store = await SqliteStore.open(path);
  const { token } = await store.createUser('alice');
  const files = () => readdirSync(dir).map((f) => readFileSync(join(dir, f)).toString('latin1')).join('\n');
  // While open (the row may sit in the WAL) and after a checkpoint into the main file.
  assert.ok(files().includes(hashToken(token)), 'the hash is stored (so the search below reads the right bytes)');
  assert.ok(!files().includes(token));
  assert.ok(!files().includes(token.slice(3)), 'not even without the prefix');
  store.db.pragma('wal_checkpoint(TRUNCATE)');
  await store.close();
  assert.ok(readFileSync(path).toString('latin1').includes(hashToken(token)));
  assert.ok(!files().includes(token));
  assert.equal(statSync(path).mode & 0o777, 0o600);
  rmSync(dir, { recursive: true });
});

test('sqlite: a database from before migrations counts as version 1, gets the later ones, and keeps its rows', async () => {
  const { dir, path } = tempSqlite();
  // The old code's schema, applied without a migrations table, with one user in it.
  const old = new Database(path);
  old.exec(SQLITE_MIGRATIONS[0].sql);
  const oldId = randomUUID();
  old.prepare('INSERT INTO users (id, name, token_hash, created_at) VALUES (?, ?, ?, ?)').run(oldId, 'old', hashToken('fx_old'), 1);
  old.prepare('INSERT INTO functions (id, owner, name, source, created_at) VALUES (?, ?, ?, ?, ?)').run(randomUUID(), oldId, 'f', '() => "é"', 1);
  old.close();
  const store = await SqliteStore.open(path);
  assert.equal(await store.schemaVersion(), SQLITE_MIGRATIONS[SQLITE_MIGRATIONS.length - 1].version, "migrated from version 1 to the latest");
  assert.equal((await store.userByToken('fx_old'))?.name, 'old');
  assert.equal((await store.usage(oldId)).functionBytes, 10, 'the bytes of the functions stored before migration 10 count');
  await store.close();
  rmSync(dir, { recursive: true });
});

test('sqlite: a database migrated by a newer funcx-service is refused, naming both versions', async () => {
  const { dir, path } = tempSqlite();
  await (await SqliteStore.open(path)).close();
  const db = new Database(path);
  db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(99, 'from the future', Date.now());
  db.close();
  await assert.rejects(SqliteStore.open(path), { code: 'SCHEMA_TOO_NEW', message: new RegExp(`schema version 99, newer than this funcx-service knows \\(${SQLITE_MIGRATIONS[SQLITE_MIGRATIONS.length - 1].version}\\)`) });
  rmSync(dir, { recursive: true });
});

test('postgres: replicas starting together migrate once; a newer schema is refused; no server is STORE_UNAVAILABLE', { skip: postgresBackend.skip }, async (t) => {
  const db = await postgresBackend.create();
  t.after(() => db.drop());
  const stores = await Promise.all([db.open(), db.open(), db.open()]);
  for (const s of stores) assert.equal(await s.schemaVersion(), POSTGRES_MIGRATIONS[POSTGRES_MIGRATIONS.length - 1].version);
  const pool = (stores[0] as PgStore).pool;
  const { rows } = await pool.query('SELECT version FROM schema_migrations ORDER BY version');
  assert.deepEqual(rows.map((r: { version: number }) => r.version), POSTGRES_MIGRATIONS.map((m) => m.version), 'each migration recorded once');
  await pool.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'from the future', 0)");
  await Promise.all(stores.map((s) => s.close()));
  await assert.rejects(db.open(), { code: 'SCHEMA_TOO_NEW', message: /schema version 99, newer than this funcx-service knows/ });

  // A port nobody listens on (bound and closed here, so it is free).
  const port = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const p = (server.address() as AddressInfo).port;
      server.close(() => resolve(p));
    });
  });
  await assert.rejects(openStore(`postgres://funcx_test:funcx_test@127.0.0.1:${port}/nowhere`), (err: Error) => {
    assert.ok(err instanceof StoreUnavailableError, `${err.name}: ${err.message}`);
    assert.match(err.message, /the database is unavailable: .*ECONNREFUSED/);
    return true;
  });
});
