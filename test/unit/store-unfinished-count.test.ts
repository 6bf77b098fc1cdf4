/**
 * SQLite keeps each owner's count of unfinished tasks in user_usage (migration 13) instead of a partial
 * index: the count must equal a COUNT(*) over the tasks after every step that can move a task into or out
 * of the unfinished states (insert, results, a refused or failed insert, endpoint deleted, user removed,
 * finished tasks deleted), and a database migrated from version 12 must start from its rows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/service/store/sqlite.js';
import { SQLITE_MIGRATIONS } from '../../src/service/store/migrations.js';
import { tempSqlite } from '../helpers/store-backends.js';

const KEY = 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7';

/** Every owner's counter next to a COUNT(*) over its tasks, for users, task owners and counter rows alike. */
function counts(db: Database.Database): Array<{ owner: string; counted: number; actual: number }> {
  return db.prepare(`SELECT o.id AS owner, COALESCE((SELECT unfinished_tasks FROM user_usage WHERE user_id = o.id), 0) AS counted,
      (SELECT COUNT(*) FROM tasks WHERE owner = o.id AND state NOT IN ('success', 'failed')) AS actual
    FROM (SELECT id FROM users UNION SELECT owner FROM tasks UNION SELECT user_id FROM user_usage) o ORDER BY o.id`).all() as Array<{ owner: string; counted: number; actual: number }>;
}

/** The counters are exact, and each named owner has `expected` unfinished tasks (also by usage()). */
async function assertCounts(store: SqliteStore, step: string, expected: Record<string, [string, number]>): Promise<void> {
  for (const c of counts(store.db)) assert.equal(c.counted, c.actual, `${step}: owner ${c.owner} counted ${c.counted}, has ${c.actual} unfinished`);
  for (const [name, [id, n]] of Object.entries(expected)) {
    assert.equal((await store.usage(id)).tasks, n, `${step}: ${name}'s unfinished tasks`);
  }
}

test('sqlite: the count of unfinished tasks per owner stays exact on every path into and out of the unfinished states', async (t) => {
  const { dir, path } = tempSqlite();
  const store = await SqliteStore.open(path);
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const alice = (await store.createUser('alice')).user;
  const bob = (await store.createUser('bob')).user;
  const carol = (await store.createUser('carol')).user;
  const ep = async (owner: string) => (await store.saveEndpoint({ id: randomUUID(), name: `ep-${owner}`, owner, publicKey: KEY, group: null })).id;
  const [epA, epB, epC] = [await ep(alice.id), await ep(bob.id), await ep(carol.id)];
  const tasks = (endpoint: string, owner: string, n: number) =>
    Array.from({ length: n }, () => ({ id: randomUUID(), endpoint, function: null, owner, payload: Buffer.from('p') }));
  const all = (a: number, b: number, c: number) => ({ alice: [alice.id, a] as [string, number], bob: [bob.id, b] as [string, number], carol: [carol.id, c] as [string, number] });
  await assertCounts(store, 'empty', all(0, 0, 0));

  // Insert: one batch of several owners and endpoints, across chunk sizes (100 + 64 + ...).
  await store.insertTasks([...tasks(epA, alice.id, 150), ...tasks(epA, bob.id, 7), ...tasks(epB, alice.id, 3)], 'user:alice', 1000);
  await store.insertTasks([...tasks(epB, bob.id, 5), ...tasks(epC, bob.id, 4), ...tasks(epC, carol.id, 2)], 'user:bob');
  await assertCounts(store, 'inserted', all(153, 16, 2));

  // A refused insert (quota) and a failed one (an id already there) leave the counts as they were.
  await assert.rejects(store.insertTasks(tasks(epA, alice.id, 10), 'user:alice', 160), { quota: 'tasks', used: 153 });
  const dup = tasks(epA, alice.id, 2);
  dup[1].id = dup[0].id;
  await assert.rejects(store.insertTasks(dup, 'user:alice'));
  await assertCounts(store, 'refused and failed inserts', all(153, 16, 2));

  // Delivery, running, requeue: unfinished to unfinished.
  const takenA = await store.takeQueued(epA, 1000);
  assert.equal(takenA.length, 157);
  assert.equal(await store.markRunning(epA, takenA.slice(0, 20).map((x) => x.id)), 20);
  await assertCounts(store, 'delivered and running', all(153, 16, 2));
  assert.equal(await store.requeueInFlight(epA), 157);
  await assertCounts(store, 'requeued', all(153, 16, 2));
  const again = await store.takeQueued(epA, 1000);
  assert.equal(again.length, 157);

  // Results: success and failed, starts riding along, a duplicate in the batch, a result written twice,
  // an unknown id and another endpoint's task: only the first write of each task counts.
  const aliceOnA = again.filter((x) => x.u === undefined).map((x) => x.id);
  const bobOnA = again.filter((x) => x.u === bob.id).map((x) => x.id);
  assert.equal(aliceOnA.length, 150);
  assert.equal(bobOnA.length, 7);
  const first = [...aliceOnA.slice(0, 120), ...bobOnA.slice(0, 3)].map((id, i) => ({ id, failed: i % 3 === 0, payload: Buffer.alloc(i % 5) }));
  const takenB = await store.takeQueued(epB, 100);
  const stored = await store.storeResults(epA, [...first, first[0], { id: randomUUID(), failed: false, payload: Buffer.from('x') },
    { id: takenB[0].id, failed: false, payload: Buffer.from('x') }], first.slice(0, 50).map((r) => r.id));
  assert.deepEqual({ stored: stored.stored.length, duplicates: stored.duplicates, unknown: stored.unknown }, { stored: 123, duplicates: 1, unknown: 2 });
  await assertCounts(store, 'results', all(33, 13, 2));
  const rewritten = await store.storeResults(epA, first.slice(0, 10));
  assert.equal(rewritten.stored.length, 0);
  await assertCounts(store, 'results written again', all(33, 13, 2));
  // bob's own tasks on his endpoint (alice's there carry her id in `u`).
  await store.storeResults(epB, takenB.filter((x) => x.u === undefined).map((x) => ({ id: x.id, failed: false, payload: Buffer.from('ok') })));
  await assertCounts(store, "results on bob's endpoint", all(33, 8, 2));

  // Deleting finished tasks changes nothing; deleting an unfinished one is refused by the store.
  const deleted = await store.deleteFinishedTasks(alice.id, [...aliceOnA.slice(0, 5), ...aliceOnA.slice(140)]);
  assert.equal(deleted.length, 5);
  await assertCounts(store, 'finished tasks deleted', all(33, 8, 2));

  // Endpoint deleted: its unfinished tasks fail, whoever owns them (alice's 30 and bob's 4 on epA).
  const failed = await store.deleteEndpoint(epA);
  assert.equal(failed?.length, 34);
  await assertCounts(store, 'endpoint deleted', all(3, 4, 2));

  // User removed: bob's endpoint fails the tasks others sent it, and his own tasks elsewhere go with him.
  await store.insertTasks([...tasks(epB, alice.id, 6), ...tasks(epB, carol.id, 1), ...tasks(epC, bob.id, 3)], 'user:x');
  await assertCounts(store, 'more inserted', all(9, 7, 3));
  const removed = await store.removeUser(bob.id);
  assert.equal(removed.failedTasks.length, 3 + 6 + 1);
  await assertCounts(store, 'user removed', all(0, 0, 2));
  assert.equal((store.db.prepare('SELECT COUNT(*) AS n FROM user_usage WHERE user_id = ?').get(bob.id) as { n: number }).n, 0, "bob's counters went with him");

  // What is left finishes.
  const takenC = await store.takeQueued(epC, 100);
  await store.storeResults(epC, takenC.filter((x) => x.u === undefined).map((x) => ({ id: x.id, failed: true, payload: Buffer.from('e') })));
  await assertCounts(store, 'all finished', all(0, 0, 0));
  assert.equal(store.db.prepare("SELECT name FROM sqlite_master WHERE name = 'tasks_unfinished_by_owner'").get(), undefined, 'the index is gone');
});

test('sqlite: migration 13 counts the unfinished tasks a version-12 database already holds, and drops the index', async () => {
  const { dir, path } = tempSqlite();
  const old = new Database(path);
  old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  for (const m of SQLITE_MIGRATIONS.filter((x) => x.version < 13)) {
    old.exec(m.sql);
    old.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, 1);
  }
  const [a, b] = [randomUUID(), randomUUID()];
  const ep = randomUUID();
  old.prepare('INSERT INTO users (id, name, token_hash, created_at) VALUES (?, ?, ?, 1), (?, ?, ?, 1)').run(a, 'a', 'ha', b, 'b', 'hb');
  old.prepare('INSERT INTO endpoints (id, name, owner, public_key, created_at, updated_at) VALUES (?, ?, ?, ?, 1, 1)').run(ep, 'ep', a, KEY);
  // a: 3 unfinished (one of each state), 2 finished, one with a result (so it has a user_usage row); b: 1 unfinished.
  const insert = old.prepare('INSERT INTO tasks (id, endpoint, owner, state, result, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, 1)');
  for (const [owner, state, result] of [[a, 'waiting-for-endpoint', null], [a, 'waiting-for-nodes', null], [a, 'running', null], [a, 'success', 'ok'],
    [a, 'failed', null], [b, 'waiting-for-endpoint', null]] as Array<[string, string, string | null]>) {
    insert.run(randomUUID(), ep, owner, state, result === null ? null : Buffer.from(result));
  }
  assert.equal((old.prepare('SELECT result_bytes FROM user_usage WHERE user_id = ?').get(a) as { result_bytes: number }).result_bytes, 2);
  old.close();
  const store = await SqliteStore.open(path);
  try {
    assert.equal(await store.schemaVersion(), SQLITE_MIGRATIONS[SQLITE_MIGRATIONS.length - 1].version);
    assert.equal((await store.usage(a)).tasks, 3);
    assert.equal((await store.usage(a)).resultBytes, 2, 'the row it had keeps its result bytes');
    assert.equal((await store.usage(b)).tasks, 1);
    for (const c of counts(store.db)) assert.equal(c.counted, c.actual, `owner ${c.owner}`);
    assert.equal(store.db.prepare("SELECT name FROM sqlite_master WHERE name = 'tasks_unfinished_by_owner'").get(), undefined);
    await assert.rejects(store.insertTasks([{ id: randomUUID(), endpoint: ep, function: null, owner: a, payload: Buffer.from('p') }], 'user:a', 3), { quota: 'tasks', used: 3 });
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
