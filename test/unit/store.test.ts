import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { hashToken, Store } from '../../src/service/store.js';

function tempStore(): { store: Store; dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'funcx-store-'));
  const path = join(dir, 'service.db');
  return { store: new Store(path), dir, path };
}

const KEY = 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7';

function seed(store: Store) {
  const { user } = store.createUser('alice');
  const endpoint = store.saveEndpoint({ id: randomUUID(), name: 'ep', owner: user.id, publicKey: KEY, group: null });
  const tasks = Array.from({ length: 5 }, (_, i) => ({ id: randomUUID(), endpoint: endpoint.id, function: null, owner: user.id, payload: Buffer.from([i]) }));
  store.insertTasks(tasks, 'user:alice');
  return { user, endpoint, tasks };
}

test('tokens: fx_ + 32 random bytes, found by hash, a wrong one finds nobody', () => {
  const { store, dir } = tempStore();
  const { user, token } = store.createUser('alice');
  assert.match(token, /^fx_[A-Za-z0-9_-]{43}$/);
  assert.equal(store.userByToken(token)?.id, user.id);
  assert.equal(store.userByToken(token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')), undefined);
  assert.notEqual(store.createUser('bob').token, token);
  store.close();
  rmSync(dir, { recursive: true });
});

test('the token never appears in the database files, only its SHA-256 hash', () => {
  const { store, dir, path } = tempStore();
  const { token } = store.createUser('alice');
  const files = () => readdirSync(dir).map((f) => readFileSync(join(dir, f)).toString('latin1')).join('\n');
  // While open (the row may sit in the WAL) and after a checkpoint into the main file.
  assert.ok(files().includes(hashToken(token)), 'the hash is stored (so the search below reads the right bytes)');
  assert.ok(!files().includes(token));
  assert.ok(!files().includes(token.slice(3)), 'not even without the prefix');
  store.db.pragma('wal_checkpoint(TRUNCATE)');
  store.close();
  assert.ok(readFileSync(path).toString('latin1').includes(hashToken(token)));
  assert.ok(!files().includes(token));
  assert.equal(statSync(path).mode & 0o777, 0o600);
  rmSync(dir, { recursive: true });
});

test('tasks queue oldest first; taking marks them delivered with a transition', () => {
  const { store, dir } = tempStore();
  const { endpoint, tasks } = seed(store);
  assert.equal(store.countQueued(endpoint.id), 5);
  const first = store.takeQueued(endpoint.id, 2);
  assert.deepEqual(first.map((t) => t.id), tasks.slice(0, 2).map((t) => t.id));
  assert.deepEqual([...first[1].payload], [1]);
  assert.equal(store.task(tasks[0].id)?.state, 'waiting-for-nodes');
  assert.equal(store.task(tasks[2].id)?.state, 'waiting-for-endpoint');
  assert.deepEqual(store.transitions(tasks[0].id).map((t) => [t.state, t.actor]), [
    ['received', 'user:alice'],
    ['waiting-for-endpoint', 'service'],
    ['waiting-for-nodes', 'forwarder'],
  ]);
  assert.equal(store.takeQueued(endpoint.id, 100).length, 3);
  assert.equal(store.takeQueued(endpoint.id, 100).length, 0);
  store.close();
  rmSync(dir, { recursive: true });
});

test('requeue puts delivered unfinished tasks back first; finished ones stay finished', () => {
  const { store, dir } = tempStore();
  const { endpoint, tasks } = seed(store);
  store.takeQueued(endpoint.id, 3);
  assert.equal(store.markRunning(endpoint.id, [tasks[1].id, tasks[4].id]), 1, 'only a delivered task can start running');
  store.storeResults(endpoint.id, [{ id: tasks[0].id, failed: false, payload: Buffer.from('ok') }]);
  assert.equal(store.requeueInFlight(endpoint.id), 2);
  assert.deepEqual(store.takeQueued(endpoint.id, 10).map((t) => t.id), [tasks[1].id, tasks[2].id, tasks[3].id, tasks[4].id]);
  assert.equal(store.task(tasks[0].id)?.state, 'success');
  store.close();
  rmSync(dir, { recursive: true });
});

test('results are stored once; duplicates and other endpoints\' tasks are dropped', () => {
  const { store, dir } = tempStore();
  const { endpoint, tasks, user } = seed(store);
  const other = store.saveEndpoint({ id: randomUUID(), name: 'other', owner: user.id, publicKey: KEY, group: null });
  store.takeQueued(endpoint.id, 5);
  const first = store.storeResults(endpoint.id, [
    { id: tasks[0].id, failed: false, payload: Buffer.from('first') },
    { id: tasks[1].id, failed: true, payload: Buffer.from('boom') },
  ]);
  assert.deepEqual(first, { stored: [tasks[0].id, tasks[1].id], duplicates: 0, unknown: 0 });
  const again = store.storeResults(endpoint.id, [{ id: tasks[0].id, failed: false, payload: Buffer.from('second') }]);
  assert.deepEqual(again, { stored: [], duplicates: 1, unknown: 0 });
  assert.equal(store.task(tasks[0].id)?.result?.toString(), 'first');
  const foreign = store.storeResults(other.id, [{ id: tasks[2].id, failed: false, payload: Buffer.from('x') }]);
  assert.deepEqual(foreign, { stored: [], duplicates: 0, unknown: 1 });
  assert.equal(store.task(tasks[2].id)?.state, 'waiting-for-nodes');
  const failed = store.task(tasks[1].id)!;
  assert.equal(failed.state, 'failed');
  assert.equal(failed.failed, true);
  assert.equal(store.transitions(tasks[0].id).filter((t) => t.state === 'success').length, 1);
  store.close();
  rmSync(dir, { recursive: true });
});

test('groups: the owner and members belong; endpoints shared with a group are listed for members', () => {
  const { store, dir } = tempStore();
  const alice = store.createUser('alice').user;
  const bob = store.createUser('bob').user;
  const carol = store.createUser('carol').user;
  const g = store.createGroup('lab', alice.id);
  store.addGroupMember(g.id, bob.id);
  store.addGroupMember(g.id, bob.id);
  assert.equal(store.isGroupMember(g.id, alice.id), true);
  assert.equal(store.isGroupMember(g.id, bob.id), true);
  assert.equal(store.isGroupMember(g.id, carol.id), false);
  assert.equal(store.group('lab')?.id, g.id);
  assert.equal(store.group(g.id)?.name, 'lab');
  store.saveEndpoint({ id: randomUUID(), name: 'shared', owner: alice.id, publicKey: KEY, group: g.id });
  store.saveEndpoint({ id: randomUUID(), name: 'private', owner: alice.id, publicKey: KEY, group: null });
  assert.deepEqual(store.endpointsFor(alice.id).map((e) => e.name), ['private', 'shared']);
  assert.deepEqual(store.endpointsFor(bob.id).map((e) => e.name), ['shared']);
  assert.deepEqual(store.endpointsFor(carol.id), []);
  assert.deepEqual(store.groupsOf(bob.id).map((x) => [x.name, x.members]), [['lab', ['bob']]]);
  store.close();
  rmSync(dir, { recursive: true });
});

test('everything survives closing and reopening the file', () => {
  const { store, dir, path } = tempStore();
  const { endpoint, tasks } = seed(store);
  store.setEndpointPorts(endpoint.id, { tasks: 1001, results: 1002, commands: 1003 });
  store.setEndpointState(endpoint.id, 'Active', 1234);
  store.takeQueued(endpoint.id, 1);
  store.close();
  const reopened = new Store(path);
  assert.equal(reopened.countQueued(endpoint.id), 4);
  assert.equal(reopened.task(tasks[0].id)?.state, 'waiting-for-nodes');
  const e = reopened.endpoint(endpoint.id)!;
  assert.deepEqual(e.ports, { tasks: 1001, results: 1002, commands: 1003 });
  assert.equal(e.lastSeen, 1234);
  assert.equal(e.state, 'Active');
  reopened.close();
  rmSync(dir, { recursive: true });
});
