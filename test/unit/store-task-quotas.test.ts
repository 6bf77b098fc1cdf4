/**
 * The quota on unfinished tasks and the count of stored result bytes, in the store, on every back end
 * (test/helpers/store-backends.ts). PostgreSQL checks the quota and inserts in one call (migration 11), and
 * adds up result bytes once per statement: batches racing each other (many connections) still stop at the
 * limit, nothing of a refused batch is kept, and the bytes match the results whichever statement wrote them.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { QuotaExceededError, type Store } from '../../src/service/store/index.js';
import { storeTest, STORE_BACKENDS } from '../helpers/store-backends.js';

const KEY = 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7';

async function seed(store: Store, name = 'alice') {
  const { user } = await store.createUser(name);
  const endpoint = await store.saveEndpoint({ id: randomUUID(), name: `ep-${name}`, owner: user.id, publicKey: KEY, group: null });
  const batch = (n: number) => Array.from({ length: n }, () => ({ id: randomUUID(), endpoint: endpoint.id, function: null, owner: user.id, payload: Buffer.from('p') }));
  return { user, endpoint, batch };
}

for (const backend of STORE_BACKENDS) {
  const it = storeTest(backend);

  it('tasks: ten batches of 3 at once against a quota of 10 leave 9; a refused batch writes nothing', async (store) => {
    const { user, endpoint, batch } = await seed(store);
    const batches = Array.from({ length: 10 }, () => batch(3));
    const settled = await Promise.allSettled(batches.map((b) => store.insertTasks(b, 'user:alice', 10)));
    const refused = settled.filter((s) => s.status === 'rejected');
    for (const s of refused) {
      assert.ok(s.reason instanceof QuotaExceededError, `refused for another reason: ${String(s.reason)}`);
      assert.deepEqual({ quota: s.reason.quota, used: s.reason.used, limit: s.reason.limit, adding: s.reason.adding }, { quota: 'tasks', used: 9, limit: 10, adding: 3 });
    }
    assert.equal(settled.length - refused.length, 3);
    assert.equal(await store.countQueued(endpoint.id), 9);
    const kept = await store.tasks(batches.flat().map((t) => t.id));
    settled.forEach((s, i) => {
      for (const t of batches[i]) assert.equal(kept.has(t.id), s.status === 'fulfilled', `task of batch ${i} ${s.status === 'fulfilled' ? 'missing' : 'kept'}`);
    });
    assert.equal((await store.usage(user.id)).tasks, 9);
    // One more fits exactly; finishing tasks frees the quota.
    await store.insertTasks(batch(1), 'user:alice', 10);
    await assert.rejects(store.insertTasks(batch(1), 'user:alice', 10), { quota: 'tasks', used: 10, limit: 10, adding: 1 });
    const taken = await store.takeQueued(endpoint.id, 2);
    await store.storeResults(endpoint.id, taken.map((t) => ({ id: t.id, failed: false, payload: Buffer.from('r') })));
    await store.insertTasks(batch(2), 'user:alice', 10);
    // Without a quota nothing is counted.
    await store.insertTasks(batch(5), 'user:alice');
    assert.equal(await store.countQueued(endpoint.id), 15);
  });

  it('tasks: one owner at the quota does not hold back another', async (store) => {
    const a = await seed(store, 'alice');
    const b = await seed(store, 'bob');
    await store.insertTasks(a.batch(2), 'user:alice', 2);
    await assert.rejects(store.insertTasks(a.batch(1), 'user:alice', 2), { quota: 'tasks', used: 2 });
    await store.insertTasks(b.batch(2), 'user:bob', 2);
    assert.equal((await store.usage(b.user.id)).tasks, 2);
  });

  it('result bytes: counted per owner by every statement that stores or fails results, freed by deleting', async (store) => {
    const a = await seed(store, 'alice');
    const b = await seed(store, 'bob');
    await store.insertTasks(a.batch(5), 'user:alice');
    await store.insertTasks(b.batch(3), 'user:bob');
    const ta = await store.takeQueued(a.endpoint.id, 5);
    const tb = await store.takeQueued(b.endpoint.id, 3);
    // A batch: results of 10, 20, ... bytes; a duplicate and a foreign id change nothing.
    const results = ta.slice(0, 4).map((t, i) => ({ id: t.id, failed: i === 3, payload: Buffer.alloc(10 * (i + 1)) }));
    await store.storeResults(a.endpoint.id, [...results, { ...results[0], payload: Buffer.alloc(999) }, { id: tb[0].id, failed: false, payload: Buffer.alloc(999) }]);
    assert.equal(await store.resultBytesOf(a.user.id), 100);
    assert.equal(await store.resultBytesOf(b.user.id), 0);
    await store.storeResults(b.endpoint.id, [{ id: tb[0].id, failed: false, payload: Buffer.alloc(7) }]);
    assert.equal(await store.resultBytesOf(b.user.id), 7);
    // The endpoint's unfinished task fails with a stored error outcome: its bytes count too.
    const failed = await store.deleteEndpoint(a.endpoint.id);
    assert.deepEqual(failed, [ta[4].id]);
    const errorBytes = (await store.task(ta[4].id))!.result!.length;
    assert.ok(errorBytes > 0);
    assert.equal(await store.resultBytesOf(a.user.id), 100 + errorBytes);
    assert.equal((await store.usage(a.user.id)).resultBytes, 100 + errorBytes);
    assert.deepEqual((await store.deleteFinishedTasks(a.user.id, [ta[1].id, ta[2].id])).sort(), [ta[1].id, ta[2].id].sort());
    assert.equal(await store.resultBytesOf(a.user.id), 100 + errorBytes - 20 - 30);
    assert.equal(await store.resultBytesOf(b.user.id), 7);
  });
}
