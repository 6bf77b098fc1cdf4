/**
 * PostgreSQL: the statement that stores results also tells the other replicas (PgStore.announceResultsOn),
 * so the replica bus's doorbell costs no statement of its own. Every id stored is told once, in payloads
 * under NOTIFY's 8000 bytes, when the statement commits; duplicates and foreign ids are not told.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { PgStore } from '../../src/service/store/index.js';
import { storeTest, postgresBackend } from '../helpers/store-backends.js';
import { until } from '../helpers/wait.js';

const KEY = 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7';
const it = storeTest(postgresBackend);

it('storeResults tells every stored id once, in chunks, and nothing else', async (store) => {
  assert.ok(store instanceof PgStore);
  const { user } = await store.createUser('alice');
  const endpoint = await store.saveEndpoint({ id: randomUUID(), name: 'ep', owner: user.id, publicKey: KEY, group: null });
  const other = await store.saveEndpoint({ id: randomUUID(), name: 'other', owner: user.id, publicKey: KEY, group: null });
  const tasks = Array.from({ length: 400 }, () => ({ id: randomUUID(), endpoint: endpoint.id, function: null, owner: user.id, payload: Buffer.from('p') }));
  const foreign = { id: randomUUID(), endpoint: other.id, function: null, owner: user.id, payload: Buffer.from('p') };
  await store.insertTasks([...tasks, foreign], 'user:alice');
  await store.takeQueued(endpoint.id, 400);

  const listener = new pg.Client({ connectionString: store.url });
  await listener.connect();
  const heard: string[] = [];
  listener.on('notification', (n) => heard.push(n.payload ?? ''));
  await listener.query('LISTEN test_results');
  try {
    const sender = 'replica-a';
    // Not announcing yet: nothing is told.
    await store.storeResults(endpoint.id, [{ id: tasks[0].id, failed: false, payload: Buffer.from('r') }]);
    store.announceResultsOn('test_results', sender);
    const results = tasks.slice(1).map((t) => ({ id: t.id, failed: false, payload: Buffer.from('r') }));
    const out = await store.storeResults(endpoint.id, [...results, { ...results[0] }, { id: tasks[0].id, failed: false, payload: Buffer.from('r') }, { id: foreign.id, failed: false, payload: Buffer.from('r') }]);
    assert.equal(out.stored.length, 399);
    assert.equal(out.duplicates, 2);
    assert.equal(out.unknown, 1);
    await until('notifications of 399 ids', () => heard.join(',').split(',').length >= 399);
    const ids: string[] = [];
    for (const payload of heard) {
      assert.ok(Buffer.byteLength(payload) < 8000, `payload of ${Buffer.byteLength(payload)} bytes`);
      assert.ok(payload.startsWith(`${sender} `), payload.slice(0, 50));
      ids.push(...payload.slice(sender.length + 1).split(','));
    }
    assert.equal(heard.length, 3, 'chunks of at most 150 ids');
    assert.deepEqual(ids.sort(), tasks.slice(1).map((t) => t.id).sort());
  } finally {
    await listener.end();
  }
});
