/**
 * Transitions written on the task row (schema version 7, store/transitions.ts), on every back end: the same
 * history as one row per transition gave, through requeues, service-side failures, starts written with
 * their results, and tasks stored before version 7.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { SqliteStore, type Store } from '../../src/service/store/index.js';
import { SQLITE_MIGRATIONS } from '../../src/service/store/migrations.js';
import { storeTest, STORE_BACKENDS, tempSqlite } from '../helpers/store-backends.js';

const KEY = 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7';

async function seed(store: Store, n = 3) {
  const { user } = await store.createUser('alice');
  const endpoint = await store.saveEndpoint({ id: randomUUID(), name: 'ep', owner: user.id, publicKey: KEY, group: null });
  const tasks = Array.from({ length: n }, (_, i) => ({ id: randomUUID(), endpoint: endpoint.id, function: null, owner: user.id, payload: Buffer.from([i]) }));
  await store.insertTasks(tasks, 'user:alice');
  return { user, endpoint, ids: tasks.map((t) => t.id) };
}

const history = async (store: Store, id: string) => (await store.transitions(id)).map((t) => `${t.state}/${t.actor}`);
const ok = (id: string) => ({ id, failed: false, payload: Buffer.from('ok') });

for (const backend of STORE_BACKENDS) {
  const it = storeTest(backend);

  it('a task run once has its five transitions, in order, with their times', async (store) => {
    const { endpoint, ids } = await seed(store, 1);
    const before = Date.now();
    await store.takeQueued(endpoint.id, 1);
    await store.markRunning(endpoint.id, ids);
    await store.storeResults(endpoint.id, [ok(ids[0])]);
    const tr = await store.transitions(ids[0]);
    assert.deepEqual(tr.map((t) => `${t.state}/${t.actor}`), [
      'received/user:alice', 'waiting-for-endpoint/service', 'waiting-for-nodes/forwarder', 'running/endpoint', 'success/endpoint',
    ]);
    for (let i = 1; i < tr.length; i++) assert.ok(tr[i].at >= tr[i - 1].at, `transition ${i} is not before the one ahead of it`);
    assert.ok(tr[2].at >= before && tr[4].at <= Date.now());
    assert.deepEqual(await store.transitions(randomUUID()), []);
  });

  it('a requeue keeps the first delivery and start, then the second run follows', async (store) => {
    const { endpoint, ids } = await seed(store, 1);
    await store.takeQueued(endpoint.id, 1);
    await store.markRunning(endpoint.id, ids);
    assert.equal(await store.requeueInFlight(endpoint.id), 1);
    assert.equal((await store.task(ids[0]))?.state, 'waiting-for-endpoint');
    assert.deepEqual(await history(store, ids[0]), [
      'received/user:alice', 'waiting-for-endpoint/service', 'waiting-for-nodes/forwarder', 'running/endpoint', 'waiting-for-endpoint/forwarder',
    ]);
    await store.takeQueued(endpoint.id, 1);
    assert.equal(await store.requeueInFlight(endpoint.id), 1, 'delivered but not started: requeued again');
    await store.takeQueued(endpoint.id, 1);
    await store.storeResults(endpoint.id, [ok(ids[0])], ids);
    assert.deepEqual(await history(store, ids[0]), [
      'received/user:alice', 'waiting-for-endpoint/service', 'waiting-for-nodes/forwarder', 'running/endpoint', 'waiting-for-endpoint/forwarder',
      'waiting-for-nodes/forwarder', 'waiting-for-endpoint/forwarder', 'waiting-for-nodes/forwarder', 'running/endpoint', 'success/endpoint',
    ]);
  });

  it('starts written with a result batch: running for those without a result, running then done for the others', async (store) => {
    const { endpoint, ids } = await seed(store, 3);
    await store.takeQueued(endpoint.id, 3);
    const out = await store.storeResults(endpoint.id, [{ id: ids[0], failed: true, payload: Buffer.from('boom') }], [ids[0], ids[1]]);
    assert.deepEqual({ ...out, at: undefined }, { stored: [ids[0]], duplicates: 0, unknown: 0, at: undefined });
    assert.deepEqual((await store.tasks(ids)).get(ids[1])?.state, 'running');
    assert.deepEqual((await store.tasks(ids)).get(ids[2])?.state, 'waiting-for-nodes');
    assert.deepEqual((await history(store, ids[0])).slice(2), ['waiting-for-nodes/forwarder', 'running/endpoint', 'failed/endpoint']);
    assert.deepEqual((await history(store, ids[1])).slice(2), ['waiting-for-nodes/forwarder', 'running/endpoint']);
    // A start reported after the result changes nothing; a result without a start has no running transition.
    assert.equal(await store.markRunning(endpoint.id, [ids[0]]), 0);
    await store.storeResults(endpoint.id, [ok(ids[2])], []);
    assert.deepEqual((await history(store, ids[2])).slice(2), ['waiting-for-nodes/forwarder', 'success/endpoint']);
    // Starts alone (an empty result batch) are written too.
    await store.requeueInFlight(endpoint.id);
    await store.takeQueued(endpoint.id, 1);
    assert.deepEqual({ ...(await store.storeResults(endpoint.id, [], [ids[1]])), at: undefined }, { stored: [], duplicates: 0, unknown: 0, at: undefined });
    assert.equal((await store.task(ids[1]))?.state, 'running');
  });

  it('deleting the endpoint fails its unfinished tasks as the service, after what they did', async (store) => {
    const { endpoint, ids } = await seed(store, 2);
    await store.takeQueued(endpoint.id, 1);
    await store.markRunning(endpoint.id, [ids[0]]);
    assert.deepEqual(new Set(await store.deleteEndpoint(endpoint.id)), new Set(ids));
    assert.deepEqual(await history(store, ids[0]), [
      'received/user:alice', 'waiting-for-endpoint/service', 'waiting-for-nodes/forwarder', 'running/endpoint', 'failed/service',
    ]);
    assert.deepEqual(await history(store, ids[1]), ['received/user:alice', 'waiting-for-endpoint/service', 'failed/service']);
    assert.equal((await store.task(ids[0]))?.failed, true);
  });
}

test('sqlite: a task stored before version 7 (one row per transition) keeps its history, and later steps follow it', async () => {
  const { dir, path } = tempSqlite();
  const old = new Database(path);
  old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  for (const m of SQLITE_MIGRATIONS.filter((x) => x.version < 7)) {
    old.exec(m.sql);
    old.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, 1);
  }
  const user = randomUUID();
  const ep = randomUUID();
  const task = randomUUID();
  old.prepare('INSERT INTO users (id, name, token_hash, created_at) VALUES (?, ?, ?, ?)').run(user, 'old', 'h', 1);
  old.prepare('INSERT INTO endpoints (id, name, owner, public_key, created_at, updated_at) VALUES (?, ?, ?, ?, 1, 1)').run(ep, 'ep', user, KEY);
  old.prepare(`INSERT INTO tasks (seq, id, endpoint, function, owner, state, created_at, updated_at) VALUES (1, ?, ?, NULL, ?, 'waiting-for-nodes', 10, 20)`).run(task, ep, user);
  old.prepare('INSERT INTO task_payloads (seq, payload) VALUES (1, ?)').run(Buffer.from([1]));
  const tr = old.prepare('INSERT INTO task_transitions (task, state, actor, at) VALUES (1, ?, ?, ?)');
  tr.run('received', 'user:old', 10);
  tr.run('waiting-for-endpoint', 'service', 10);
  tr.run('waiting-for-nodes', 'forwarder', 20);
  old.close();
  const store = await SqliteStore.open(path);
  try {
    assert.equal(await store.schemaVersion(), SQLITE_MIGRATIONS[SQLITE_MIGRATIONS.length - 1].version);
    assert.equal(await store.markRunning(ep, [task]), 1);
    await store.storeResults(ep, [{ id: task, failed: false, payload: Buffer.from('ok') }]);
    assert.deepEqual((await store.transitions(task)).map((t) => `${t.state}/${t.actor}@${t.at >= 20 ? 'later' : t.at}`), [
      'received/user:old@10', 'waiting-for-endpoint/service@10', 'waiting-for-nodes/forwarder@later', 'running/endpoint@later', 'success/endpoint@later',
    ]);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true });
  }
});
