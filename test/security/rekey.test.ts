/**
 * A new endpoint key cuts off connections made with the old one: after the owner re-registers with a new
 * key, a peer still connected with the old key is served nothing more.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registerEndpoint } from '../../src/endpoint/service-link/registration.js';
import { newKeyPair } from '../../src/protocol/keys.js';
import { FakeEndpoint, removeFakeEndpointDirs } from '../helpers/fake-endpoint.js';
import { until } from '../helpers/wait.js';
import { addUser, inProcessService } from './harness.js';

test.after(() => removeFakeEndpointDirs());

test('re-registering with a new key drops the connections made with the old key', async (t) => {
  const s = await inProcessService(t);
  const alice = await addUser(s, 'alice');
  const old = await FakeEndpoint.start(s.url, alice.token, { name: 'ep' });
  t.after(() => old.close());
  const fn = await alice.sdk.registerFunction((x: number) => x * 2, { name: 'double' });
  assert.equal(await alice.sdk.getResult(await alice.sdk.run(old.id, fn, 1), { waitMs: 30_000 }), 2);

  // The key leaked, say: the owner registers a new one. The old connection is still open on its side.
  const keys = newKeyPair();
  const reg = await registerEndpoint(s.url, alice.token, { name: 'ep', endpointId: old.id, publicKey: keys.publicKey });
  // On the same ports: the old connection's reconnects reach the new forwarder and are refused there.
  assert.deepEqual(reg.forwarder.ports, old.forwarder.ports, 'the re-keyed forwarder keeps its ports');
  const task = await alice.sdk.run(old.id, fn, 21);
  const fresh = await FakeEndpoint.start(s.url, alice.token, { register: false, endpointId: reg.endpointId, forwarder: reg.forwarder, keys });
  t.after(() => fresh.close());
  assert.equal(await alice.sdk.getResult(task, { waitMs: 30_000 }), 42);
  assert.deepEqual(fresh.executed, [task], 'the endpoint with the new key ran the task');
  assert.equal(old.executed.includes(task), false, 'the connection made with the old key got nothing');
  await until('the old key is refused when it reconnects', () => (s.forwarders.get(old.id)?.refusedCount ?? 0) > 0);
});
