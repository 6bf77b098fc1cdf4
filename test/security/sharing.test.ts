/**
 * Sharing you can trust. An endpoint shared with a group runs members' tasks only for functions in its
 * profile's allowed_functions (unless it sets allow_any_function_from): the service refuses others at submit
 * with a 403 naming the rule, and tasks it lets through carry the submitter (`u`) so the endpoint runs them in
 * that user's own workers. Results of one user stay invisible to the other.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { RunningService } from '../../src/service/api.js';
import { registerEndpoint, type RegisterRequest } from '../../src/endpoint/service-link/registration.js';
import { newKeyPair } from '../../src/protocol/keys.js';
import { ServiceError } from '../../src/sdk/client.js';
import { ShellFunction } from '../../src/sdk/functions.js';
import { FakeEndpoint } from '../helpers/fake-endpoint.js';
import { addUser, api, inProcessService } from './harness.js';

async function refused(call: Promise<unknown>, what: string, message?: RegExp): Promise<void> {
  await assert.rejects(call, (err: unknown) => {
    assert.ok(err instanceof ServiceError, `${what}: expected a ServiceError, got ${String(err)}`);
    assert.equal(err.status, 403, `${what}: ${err.message}`);
    if (message) assert.match(err.message, message, what);
    return true;
  });
}

async function sharedEndpoint(t: TestContext, s: RunningService, token: string, request: Omit<RegisterRequest, 'name' | 'publicKey'>) {
  const keys = newKeyPair();
  const reg = await registerEndpoint(s.url, token, { name: 'lab-ep', publicKey: keys.publicKey, ...request });
  const ep = await FakeEndpoint.start(s.url, token, { register: false, endpointId: reg.endpointId, forwarder: reg.forwarder, keys });
  t.after(() => ep.close());
  return { ep, keys };
}

test("a group member runs only the shared endpoint's allowed functions; tasks carry who submitted them", async (t) => {
  const s = await inProcessService(t);
  const alice = await addUser(s, 'alice');
  const carol = await addUser(s, 'carol');
  const carolId = (await s.store.userByName('carol'))!.id;
  await alice.sdk.createGroup('lab');
  await alice.sdk.addGroupMember('lab', 'carol');
  await carol.sdk.acceptInvitation('lab');
  const allowed = await alice.sdk.registerFunction((x: number) => `allowed:${x}`, { name: 'allowed', group: 'lab' });
  const ownersOnly = await alice.sdk.registerFunction(() => 'owner only', { name: 'owner-only' });
  const anything = await carol.sdk.registerFunction(() => `carol ran code as alice: pid ${process.pid}`, { name: 'anything' });

  const { ep } = await sharedEndpoint(t, s, alice.token, { group: 'lab', sharing: { allowedFunctions: [allowed], anyFunction: false } });

  // The attack: a member runs a function of her own (or a shell command) as the endpoint's owner.
  await refused(carol.sdk.run(ep.id, anything), 'carol runs her own function', /allowed_functions/);
  await refused(carol.sdk.run(ep.id, ShellFunction('id')), 'carol runs a shell command', /allowed_functions/);
  assert.equal(await s.store.countQueued(ep.id), 0, 'nothing refused was queued');

  // What the profile allows runs, marked as carol's; the owner's own tasks are unaffected and unmarked.
  const carolTask = await carol.sdk.run(ep.id, allowed, 1);
  assert.equal(await carol.sdk.getResult(carolTask, { waitMs: 10_000 }), 'allowed:1');
  const aliceTask = await alice.sdk.run(ep.id, ownersOnly);
  assert.equal(await alice.sdk.getResult(aliceTask, { waitMs: 10_000 }), 'owner only');
  assert.equal(ep.submitters.get(carolTask), carolId);
  assert.ok(ep.submitters.has(aliceTask) && ep.submitters.get(aliceTask) === undefined, 'the owner\'s task has no user header');

  // Results of one user are never visible to the other.
  for (const [who, token, task] of [['carol', carol.token, aliceTask], ['alice', alice.token, carolTask]] as const) {
    assert.equal((await api(s.url, token, 'GET', `/v1/tasks/${task}`)).status, 403, `${who} reads the other's task`);
    assert.equal((await api(s.url, token, 'POST', '/v1/tasks/results', { ids: [task] })).status, 403, `${who} fetches the other's result in a batch`);
  }

  // allow_any_function_from: the owner re-registers with it; carol's own function now runs.
  await registerEndpoint(s.url, alice.token, { name: 'lab-ep', endpointId: ep.id, publicKey: ep.keys.publicKey, group: 'lab', sharing: { allowedFunctions: null, anyFunction: true } });
  assert.match(await carol.sdk.getResult<string>(await carol.sdk.run(ep.id, anything), { waitMs: 10_000 }), /carol ran code/);

  // A registration without a group unshares: the profile is the truth.
  await registerEndpoint(s.url, alice.token, { name: 'lab-ep', endpointId: ep.id, publicKey: ep.keys.publicKey });
  assert.equal((await s.store.endpoint(ep.id))!.group, null);
  await refused(carol.sdk.run(ep.id, allowed, 2), 'carol submits to the unshared endpoint', /not shared with you/);
});

test('an endpoint shared without rules (an older daemon) runs no other user\'s task', async (t) => {
  const s = await inProcessService(t);
  const alice = await addUser(s, 'alice');
  const carol = await addUser(s, 'carol');
  await alice.sdk.createGroup('lab');
  await alice.sdk.addGroupMember('lab', 'carol');
  await carol.sdk.acceptInvitation('lab');
  const fn = await alice.sdk.registerFunction(() => 1, { name: 'f', group: 'lab' });
  const { ep } = await sharedEndpoint(t, s, alice.token, { group: 'lab' });
  await refused(carol.sdk.run(ep.id, fn), 'carol on a shared endpoint that registered no rules', /allowed_functions/);
  assert.equal(await alice.sdk.getResult(await alice.sdk.run(ep.id, fn), { waitMs: 10_000 }), 1);
});
