/**
 * Users and groups on the real service (in this process) with endpoints built from the real ForwarderClient:
 * a token for bob cannot start (register), stop, query or submit to alice's endpoint, nor read alice's
 * functions, results or transitions; a function shared with a group runs for its members only.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { RunningService } from '../../src/service/api.js';
import { registerEndpoint } from '../../src/endpoint/service-link/registration.js';
import { newKeyPair } from '../../src/protocol/keys.js';
import { ServiceError } from '../../src/sdk/client.js';
import { ShellFunction } from '../../src/sdk/functions.js';
import { FakeEndpoint, type FakeEndpointOptions } from '../helpers/fake-endpoint.js';
import { addUser, api, inProcessService, type TestUser } from './harness.js';

async function endpoint(t: TestContext, s: RunningService, user: TestUser, options: FakeEndpointOptions = {}): Promise<FakeEndpoint> {
  const ep = await FakeEndpoint.start(s.url, user.token, { name: `${user.name}-ep`, ...options });
  t.after(() => ep.close());
  return ep;
}

/** Assert the SDK call fails with this HTTP status. */
async function refused(call: Promise<unknown>, status: number, what: string): Promise<void> {
  await assert.rejects(call, (err: unknown) => {
    assert.ok(err instanceof ServiceError, `${what}: expected a ServiceError, got ${String(err)}`);
    assert.equal(err.status, status, `${what}: ${err.message}`);
    return true;
  });
}

test("bob's token cannot start, stop, query or submit to alice's endpoint, nor read her tasks", async (t) => {
  const s = await inProcessService(t);
  const alice = await addUser(s, 'alice');
  const bob = await addUser(s, 'bob');
  const ea = await endpoint(t, s, alice);
  const eb = await endpoint(t, s, bob);
  const aliceFn = await alice.sdk.registerFunction((x: number) => x * 2, { name: 'double' });
  const bobFn = await bob.sdk.registerFunction(() => 'bob was here', { name: 'bob' });
  const aliceTask = await alice.sdk.run(ea.id, aliceFn, 21);
  assert.equal(await alice.sdk.getResult(aliceTask, { waitMs: 10_000 }), 42);

  // Start = register with the endpoint's id: refused whatever key bob offers, and alice's key stays the one let in.
  for (const publicKey of [newKeyPair().publicKey, ea.keys.publicKey]) {
    await assert.rejects(registerEndpoint(s.url, bob.token, { name: 'default', endpointId: ea.id, publicKey }), { code: 'FORBIDDEN', message: /belongs to another user/ });
  }
  assert.equal((await s.store.endpoint(ea.id))!.owner, (await s.store.userByName('alice'))!.id);
  assert.equal((await s.store.endpoint(ea.id))!.publicKey, ea.keys.publicKey);

  // Submit: a function, a shell command, and a batch that mixes bob's own endpoint with alice's (all or nothing).
  await refused(bob.sdk.run(ea.id, bobFn), 403, 'bob runs his function on alice\'s endpoint');
  await refused(bob.sdk.run(ea.id, ShellFunction('touch /tmp/funcx-sec-bob-was-here')), 403, 'bob runs a shell command there');
  const batch = bob.sdk.createBatch();
  batch.add(eb.id, bobFn);
  batch.add(ea.id, bobFn);
  await refused(bob.sdk.batchRun(batch), 403, 'a batch with one task for alice\'s endpoint');
  assert.equal(await s.store.countQueued(eb.id), 0, 'nothing of the refused batch was queued');
  await refused(bob.sdk.run(eb.id, aliceFn, 1), 403, 'bob runs alice\'s unshared function on his own endpoint');

  // Read: the task, its transitions, a long-poll, the batch results route, the function, the endpoint.
  for (const [method, path, body] of [
    ['GET', `/v1/tasks/${aliceTask}`],
    ['GET', `/v1/tasks/${aliceTask}?wait=5`],
    ['GET', `/v1/tasks/${aliceTask}/transitions`],
    ['POST', '/v1/tasks/results?wait=1', { ids: [aliceTask] }],
    ['GET', `/v1/functions/${aliceFn}`],
    ['GET', `/v1/endpoints/${ea.id}`],
    ['GET', `/v1/endpoints/${ea.id}/status`],
  ] as Array<[string, string, unknown?]>) {
    const r = await api(s.url, bob.token, method, path, body);
    assert.equal(r.status, 403, `${method} ${path} as bob: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.result, undefined);
    assert.equal(r.body.source, undefined);
    assert.equal(r.body.transitions, undefined);
  }
  assert.ok(!(await bob.sdk.listEndpoints()).some((e) => e.endpointId === ea.id), "alice's endpoint is not in bob's list");

  // Stop through the service: refused for bob, and the endpoint never hears of it; alice may.
  const stop = await api(s.url, bob.token, 'POST', `/v1/endpoints/${ea.id}/stop`);
  assert.equal(stop.status, 403, JSON.stringify(stop.body));
  assert.equal(ea.stopRequested, false);
  const own = await api(s.url, alice.token, 'POST', `/v1/endpoints/${ea.id}/stop`);
  assert.equal(own.status, 200, JSON.stringify(own.body));
  assert.equal(ea.stopRequested, true);

  // Without a token, or with a made-up one: 401 everywhere; unknown ids: 404.
  for (const token of [undefined, 'fx_not-a-real-token']) {
    for (const [method, path] of [['GET', `/v1/tasks/${aliceTask}`], ['GET', `/v1/endpoints/${ea.id}`], ['POST', `/v1/endpoints/${ea.id}/stop`]]) {
      assert.equal((await api(s.url, token, method, path)).status, 401, `${method} ${path} with token ${String(token)}`);
    }
  }
  assert.equal((await api(s.url, bob.token, 'GET', '/v1/tasks/00000000-0000-4000-8000-000000000000')).status, 404);

  // Alice's endpoint still works with her key after all this.
  assert.equal(await alice.sdk.getResult(await alice.sdk.run(ea.id, aliceFn, 5), { waitMs: 10_000 }), 10);
  const bobId = (await s.store.userByName('bob'))!.id;
  const executed = await s.store.tasks(ea.executed);
  assert.ok(![...executed.values()].some((t) => t.owner === bobId), "none of bob's tasks ran on alice's endpoint");
});

test('a function shared with a group runs for its members only; only the owner adds members', async (t) => {
  const s = await inProcessService(t);
  const alice = await addUser(s, 'alice');
  const carol = await addUser(s, 'carol');
  const bob = await addUser(s, 'bob');
  await alice.sdk.createGroup('lab');
  await alice.sdk.addGroupMember('lab', 'carol');
  await carol.sdk.acceptInvitation('lab');
  const shared = await alice.sdk.registerFunction((x: number) => `shared:${x}`, { name: 'shared', group: 'lab' });
  const private_ = await alice.sdk.registerFunction(() => 'private', { name: 'private' });
  const ec = await endpoint(t, s, carol);
  const eb = await endpoint(t, s, bob);

  // A member runs it on her own endpoint; the owner's unshared function stays the owner's.
  assert.equal(await carol.sdk.getResult(await carol.sdk.run(ec.id, shared, 7), { waitMs: 10_000 }), 'shared:7');
  assert.equal((await api(s.url, carol.token, 'GET', `/v1/functions/${shared}`)).status, 200);
  await refused(carol.sdk.run(ec.id, private_), 403, 'carol runs alice\'s unshared function');

  // A non-member cannot run it, read it, join the group, nor share into it.
  await refused(bob.sdk.run(eb.id, shared, 1), 403, 'bob runs the shared function');
  assert.equal((await api(s.url, bob.token, 'GET', `/v1/functions/${shared}`)).status, 403);
  await refused(bob.sdk.addGroupMember('lab', 'bob'), 403, 'bob adds himself to the group');
  await refused(carol.sdk.addGroupMember('lab', 'bob'), 403, 'a member (not the owner) adds bob');
  await refused(bob.sdk.registerFunction(() => 1, { group: 'lab' }), 403, 'bob shares a function with a group he is not in');
  assert.deepEqual((await carol.sdk.whoami()).groups, ['lab']);
  assert.deepEqual((await bob.sdk.whoami()).groups, []);

  // An endpoint shared with the group: members submit, others do not.
  const keys = newKeyPair();
  await assert.rejects(registerEndpoint(s.url, bob.token, { name: 'x', publicKey: newKeyPair().publicKey, group: 'lab' }), { code: 'SHARED_WITH', message: /shared_with names group "lab"/ });
  // Its profile lets members run the shared function (sharing.test.ts: what else a member may run).
  const reg = await registerEndpoint(s.url, alice.token, { name: 'lab-ep', publicKey: keys.publicKey, group: 'lab', sharing: { allowedFunctions: [shared], anyFunction: false } });
  const eg = await endpoint(t, s, alice, { register: false, endpointId: reg.endpointId, forwarder: reg.forwarder, keys });
  assert.equal(await carol.sdk.getResult(await carol.sdk.run(eg.id, shared, 8), { waitMs: 10_000 }), 'shared:8');
  const bobFn = await bob.sdk.registerFunction(() => 'bob', { name: 'bob' });
  await refused(bob.sdk.run(eg.id, bobFn), 403, "bob submits to the group's endpoint");
  await refused(bob.sdk.run(eg.id, shared, 1), 403, "bob runs the shared function on the group's endpoint");
  assert.equal(eb.executed.length, 0, 'nothing ran on bob\'s endpoint');
});
