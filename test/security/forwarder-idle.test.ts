/**
 * Forwarders come and go: an endpoint gone (not Active) for `forwarderIdleCloseMs` has its forwarder closed
 * (ports and ZeroMQ context back), while connected endpoints keep theirs; tasks submitted meanwhile wait in
 * the store, and the endpoint's next registration opens a forwarder again that delivers them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { newKeyPair } from '../../src/protocol/keys.js';
import { FakeEndpoint, removeFakeEndpointDirs } from '../helpers/fake-endpoint.js';
import { until } from '../helpers/wait.js';
import { addUser, inProcessService } from './harness.js';

test.after(() => removeFakeEndpointDirs());

/** True when nothing listens on the loopback port (it can be bound). */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

test('a forwarder closes once its endpoint has been gone a while, and reopens at its next registration', async (t) => {
  const s = await inProcessService(t, { forwarderIdleCloseMs: 1500, heartbeatPeriodMs: 100, heartbeatThresholdMs: 600 });
  const alice = await addUser(s, 'alice');
  const stays = await FakeEndpoint.start(s.url, alice.token, { name: 'stays' });
  t.after(() => stays.close());
  const keys = newKeyPair();
  const goes = await FakeEndpoint.start(s.url, alice.token, { name: 'goes', keys });
  await until('both endpoints are Active', () => s.forwarders.get(goes.id)?.state === 'Active' && s.forwarders.get(stays.id)?.state === 'Active');
  const ports = Object.values(s.forwarders.get(goes.id)!.ports);
  for (const port of ports) assert.equal(await bindable(port), false, `port ${port} is the forwarder's while it is open`);

  await goes.close();
  await until('the gone endpoint is Inactive', () => s.forwarders.get(goes.id)?.state !== 'Active');
  await until('its forwarder is closed', () => s.forwarders.get(goes.id) === undefined, { timeoutMs: 30_000 });
  assert.ok(s.forwarders.get(stays.id), 'the connected endpoint keeps its forwarder');
  // ZeroMQ closes the listening sockets in its I/O thread, after close() returned: wait for the ports.
  await until('its ports are free again', async () => (await Promise.all(ports.map(bindable))).every(Boolean), { timeoutMs: 30_000 });
  assert.equal((await alice.sdk.getEndpoint(goes.id)).state, 'Inactive', 'the endpoint is still registered, Inactive');

  // Work submitted while it is gone waits; the endpoint's return opens a forwarder that delivers it.
  const fn = await alice.sdk.registerFunction((x: number) => x + 1, { name: 'inc' });
  const task = await alice.sdk.run(goes.id, fn, 41);
  const back = await FakeEndpoint.start(s.url, alice.token, { name: 'goes', endpointId: goes.id, keys });
  t.after(() => back.close());
  assert.ok(s.forwarders.get(goes.id), 'the registration opened a forwarder');
  assert.equal(await alice.sdk.getResult(task, { waitMs: 20_000 }), 42);
  assert.equal((await alice.sdk.getEndpoint(goes.id)).state, 'Active');
});
