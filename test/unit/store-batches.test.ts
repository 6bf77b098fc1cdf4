/**
 * The task path on batches bigger than one multi-row statement (sqlite-batches.ts writes 100 rows per
 * statement): every task keeps its own payload, state and result across the chunk boundaries, on both back ends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Store } from '../../src/service/store/index.js';
import { storeTest, STORE_BACKENDS } from '../helpers/store-backends.js';
import { chunkSizes, ROWS_PER_STATEMENT } from '../../src/service/store/sqlite-batches.js';

const KEY = 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7';
const N = 250;

async function seed(store: Store) {
  const { user } = await store.createUser('alice');
  const endpoint = await store.saveEndpoint({ id: randomUUID(), name: 'ep', owner: user.id, publicKey: KEY, group: null });
  const tasks = Array.from({ length: N }, (_, i) => ({
    id: randomUUID(), endpoint: endpoint.id, function: i % 2 ? null : 'f', owner: user.id, payload: Buffer.from(`payload ${i}`),
  }));
  await store.insertTasks(tasks, 'user:alice');
  return { user, endpoint, tasks };
}

test('SQLite chunks: full statements, then powers of two (at most 8 row counts are ever prepared)', () => {
  const seen = new Set<number>();
  for (let total = 0; total <= 1000; total++) {
    const sizes = chunkSizes(total);
    assert.equal(sizes.reduce((a, b) => a + b, 0), total, `${total} rows`);
    for (const n of sizes) seen.add(n);
  }
  assert.deepEqual([...seen].sort((a, b) => b - a), [ROWS_PER_STATEMENT, 64, 32, 16, 8, 4, 2, 1]);
});

for (const backend of STORE_BACKENDS) {
  const it = storeTest(backend);

  it(`${backend.name}: a batch of ${N} tasks is queued in order, each with its own payload and function`, async (store) => {
    const { endpoint, tasks } = await seed(store);
    const first = await store.takeQueued(endpoint.id, 130);
    const rest = await store.takeQueued(endpoint.id, 1000);
    assert.deepEqual([...first, ...rest].map((t) => [t.id, t.fn, Buffer.from(t.payload).toString()]),
      tasks.map((t) => [t.id, t.function ?? undefined, t.payload.toString()]));
    assert.equal(first.length, 130);
    assert.equal(await store.countQueued(endpoint.id), 0);
    const summaries = await store.taskSummaries([...tasks.map((t) => t.id), randomUUID()]);
    assert.equal(summaries.size, N);
    assert.ok([...summaries.values()].every((t) => t.state === 'waiting-for-nodes'));
  });

  it(`${backend.name}: taking part of a batch delivers exactly the tasks taken`, async (store) => {
    const { endpoint, tasks } = await seed(store);
    await store.takeQueued(endpoint.id, 130);
    const states = await store.taskSummaries(tasks.map((t) => t.id));
    assert.deepEqual(tasks.map((t) => states.get(t.id)?.state),
      tasks.map((_, i) => (i < 130 ? 'waiting-for-nodes' : 'waiting-for-endpoint')));
  });

  it(`${backend.name}: ${N} starts and results in one batch: each stored once, the first of a twice-sent result wins`, async (store) => {
    const { endpoint, tasks } = await seed(store);
    await store.takeQueued(endpoint.id, 200); // the last 50 stay queued: they cannot start
    assert.equal(await store.markRunning(endpoint.id, tasks.slice(0, 120).map((t) => t.id)), 120);
    assert.equal(await store.markRunning(endpoint.id, tasks.map((t) => t.id)), 80, 'only delivered tasks start, once');
    const results = tasks.slice(0, 200).map((t, i) => ({ id: t.id, failed: i % 7 === 0, payload: Buffer.from(`result ${i}`) }));
    results.splice(150, 0, { id: tasks[3].id, failed: false, payload: Buffer.from('again') });
    results.push({ id: randomUUID(), failed: false, payload: Buffer.from('nobody') });
    const out = await store.storeResults(endpoint.id, results);
    assert.deepEqual(out.stored, tasks.slice(0, 200).map((t) => t.id), 'stored in the order sent');
    assert.equal(out.duplicates, 1);
    assert.equal(out.unknown, 1);
    const read = await store.tasks(tasks.map((t) => t.id));
    tasks.forEach((t, i) => {
      const r = read.get(t.id)!;
      if (i >= 200) return assert.equal(r.state, 'waiting-for-endpoint');
      assert.equal(r.result?.toString(), `result ${i}`);
      assert.equal(r.state, i % 7 === 0 ? 'failed' : 'success');
      assert.equal(r.failed, i % 7 === 0);
    });
    const again = await store.storeResults(endpoint.id, results.slice(0, 150));
    assert.deepEqual({ stored: again.stored, duplicates: again.duplicates }, { stored: [], duplicates: 150 });
  });

  it(`${backend.name}: starts reported with their results are written with them (running transition kept)`, async (store) => {
    const { endpoint, tasks } = await seed(store);
    await store.takeQueued(endpoint.id, N);
    const ids = tasks.map((t) => t.id);
    // The first 150 finish with their start in the same batch; the other 100 only start.
    const out = await store.storeResults(endpoint.id, ids.slice(0, 150).map((id) => ({ id, failed: false, payload: Buffer.from('ok') })), ids);
    assert.equal(out.stored.length, 150);
    const states = await store.taskSummaries(ids);
    assert.deepEqual(ids.map((id) => states.get(id)?.state), ids.map((_, i) => (i < 150 ? 'success' : 'running')));
    for (const id of [ids[0], ids[149]]) {
      assert.deepEqual((await store.transitions(id)).map((t) => t.state), ['received', 'waiting-for-endpoint', 'waiting-for-nodes', 'running', 'success']);
    }
  });
}
