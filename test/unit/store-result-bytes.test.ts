/**
 * Stored result bytes per user (the resultBytes quota): counted when a result is written, whichever way it is
 * written (a batch of results over several statements and owners, a result sent twice, a service-side failure),
 * and given back when the task is deleted; on both back ends.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Store } from '../../src/service/store/index.js';
import { storeTest, STORE_BACKENDS } from '../helpers/store-backends.js';

const KEY = 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7';

async function seed(store: Store, n: number) {
  const alice = (await store.createUser('alice')).user;
  const bob = (await store.createUser('bob')).user;
  const endpoint = await store.saveEndpoint({ id: randomUUID(), name: 'ep', owner: alice.id, publicKey: KEY, group: null });
  // Alternate owners, so every statement of the batch writes results of both.
  const tasks = Array.from({ length: n }, (_, i) => ({
    id: randomUUID(), endpoint: endpoint.id, function: null, owner: i % 2 ? bob.id : alice.id, payload: Buffer.from('p'),
  }));
  await store.insertTasks(tasks, 'user:alice');
  return { alice, bob, endpoint, tasks };
}

for (const backend of STORE_BACKENDS) {
  const it = storeTest(backend);

  it(`${backend.name}: a batch of results counts each owner's bytes once per task`, async (store) => {
    const { alice, bob, endpoint, tasks } = await seed(store, 230);
    await store.takeQueued(endpoint.id, 1000);
    const size = (i: number) => 10 + (i % 7);
    const results = tasks.map((t, i) => ({ id: t.id, failed: i % 5 === 0, payload: Buffer.alloc(size(i), 1) }));
    // Half of the starts reported with the batch; one result twice in it.
    const stored = await store.storeResults(endpoint.id, [...results, results[3]], tasks.slice(0, 115).map((t) => t.id));
    assert.equal(stored.stored.length, 230);
    const want = (owner: number) => results.reduce((n, r, i) => n + (i % 2 === owner ? size(i) : 0), 0);
    assert.equal(await store.resultBytesOf(alice.id), want(0));
    assert.equal(await store.resultBytesOf(bob.id), want(1));
    // The same batch again (the endpoint did not get the ack): nothing more is counted.
    const again = await store.storeResults(endpoint.id, results);
    assert.equal(again.stored.length, 0);
    assert.equal(await store.resultBytesOf(alice.id), want(0));
    assert.equal((await store.usage(bob.id)).resultBytes, want(1));
    // Deleting finished tasks gives their bytes back.
    await store.deleteFinishedTasks(bob.id, tasks.filter((_, i) => i % 2 === 1).map((t) => t.id));
    assert.equal(await store.resultBytesOf(bob.id), 0);
    assert.equal(await store.resultBytesOf(alice.id), want(0));
  });

  it(`${backend.name}: tasks failed by the service (endpoint deleted) count their error's bytes`, async (store) => {
    const { alice, bob, endpoint, tasks } = await seed(store, 6);
    await store.takeQueued(endpoint.id, 2); // two in flight, four still queued: both kinds fail
    await store.storeResults(endpoint.id, [{ id: tasks[0].id, failed: false, payload: Buffer.alloc(40) }]);
    const failed = await store.deleteEndpoint(endpoint.id);
    assert.equal(failed?.length, 5);
    const records = await store.tasks(tasks.map((t) => t.id));
    const bytes = (owner: string) => tasks.filter((t) => t.owner === owner).reduce((n, t) => n + (records.get(t.id)!.result?.length ?? 0), 0);
    assert.ok(bytes(bob.id) > 0);
    assert.equal(await store.resultBytesOf(alice.id), bytes(alice.id));
    assert.equal(await store.resultBytesOf(bob.id), bytes(bob.id));
  });
}
