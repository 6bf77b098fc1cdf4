/**
 * Revocation: a rotated token stops working at once (an open long-poll answers 401, not the result); a
 * disabled or removed user is refused; owners delete their functions and groups (others get 403), and what
 * was shared through them is no longer shared.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { RunningService } from '../../src/service/api.js';
import { RemoteError } from '../../src/protocol/payload.js';
import { FuncXClient, ServiceError } from '../../src/sdk/client.js';
import { FakeEndpoint, removeFakeEndpointDirs } from '../helpers/fake-endpoint.js';
import { until } from '../helpers/wait.js';
import { addUser, api, CliStack, inProcessService, runCli, type TestUser } from './harness.js';

test.after(() => removeFakeEndpointDirs());

async function endpoint(t: TestContext, s: RunningService, user: TestUser, hold = false): Promise<FakeEndpoint> {
  const ep = await FakeEndpoint.start(s.url, user.token, { name: `${user.name}-ep`, hold });
  t.after(() => ep.close());
  return ep;
}

async function status(call: Promise<unknown>, expected: number, what: string): Promise<void> {
  await assert.rejects(call, (err: unknown) => {
    assert.ok(err instanceof ServiceError, `${what}: expected a ServiceError, got ${String(err)}`);
    assert.equal(err.status, expected, `${what}: ${err.message}`);
    return true;
  });
}

test('a rotated token stops working at once, also for a long-poll already waiting', async (t) => {
  const s = await inProcessService(t);
  const alice = await addUser(s, 'alice');
  const ep = await endpoint(t, s, alice, true);
  const fn = await alice.sdk.registerFunction((x: number) => x, { name: 'id' });
  const task = await alice.sdk.run(ep.id, fn, 1);
  const waiting = api(s.url, alice.token, 'GET', `/v1/tasks/${task}?wait=30`);
  await until('the long-poll waits', () => s.waiters.size === 1);

  await until('the endpoint holds the task', () => ep.heldTasks.length === 1);
  const fresh = await alice.sdk.rotateToken();
  assert.notEqual(fresh, alice.token);
  await ep.answerHeld('secret result');
  const answer = await waiting;
  assert.equal(answer.status, 401, `the waiting long-poll of the old token: ${JSON.stringify(answer.body)}`);
  assert.equal(answer.body.result, undefined);
  assert.equal((await api(s.url, alice.token, 'GET', '/v1/whoami')).status, 401, 'the old token is refused');
  const renewed = new FuncXClient({ serviceUrl: s.url, token: fresh });
  assert.equal((await renewed.whoami()).name, 'alice');
  assert.equal(await renewed.getResult(task, { waitMs: 10_000 }), 'secret result');
});

test('a token rotated while its submission waits (POST /v1/tasks?wait) gets 401, not the result', async (t) => {
  const s = await inProcessService(t);
  const alice = await addUser(s, 'alice');
  const ep = await endpoint(t, s, alice, true);
  const fn = await alice.sdk.registerFunction((x: number) => x, { name: 'id' });
  const waiting = api(s.url, alice.token, 'POST', '/v1/tasks?wait=30', { tasks: [{ endpointId: ep.id, functionId: fn, args: '' }] });
  await until('the submission waits', () => s.waiters.size === 1);
  await until('the endpoint holds the task', () => ep.heldTasks.length === 1);
  const fresh = await alice.sdk.rotateToken();
  await ep.answerHeld('secret result');
  const answer = await waiting;
  assert.equal(answer.status, 401, `the waiting submission of the old token: ${JSON.stringify(answer.body)}`);
  assert.equal(answer.body.finished, undefined);
  const renewed = new FuncXClient({ serviceUrl: s.url, token: fresh });
  assert.equal(await renewed.getResult(ep.heldTasks[0].id, { waitMs: 10_000 }), 'secret result');
});

test('a call woken by its result at once looks its token up once, not again after the wait', async (t) => {
  const s = await inProcessService(t);
  const alice = await addUser(s, 'alice');
  const ep = await endpoint(t, s, alice);
  const fn = await alice.sdk.registerFunction((x: number) => x + 1, { name: 'inc' });
  assert.equal(await alice.sdk.call(ep.id, fn, [1], { waitMs: 30_000 }), 2); // warm
  let lookups = 0;
  const userByToken = s.store.userByToken.bind(s.store);
  s.store.userByToken = (token: string) => (lookups++, userByToken(token));
  t.after(() => (s.store.userByToken = userByToken));
  assert.equal(await alice.sdk.call(ep.id, fn, [2], { waitMs: 30_000 }), 3);
  // The rotation and revocation tests above show the check after the wait still runs when a change was heard of.
  assert.equal(lookups, 1, 'one token lookup for a call (the check after the wait is skipped: nothing changed)');
});

test('owners delete functions and groups; others cannot; sharing through them ends', async (t) => {
  const s = await inProcessService(t);
  const alice = await addUser(s, 'alice');
  const carol = await addUser(s, 'carol');
  const bob = await addUser(s, 'bob');
  const ec = await endpoint(t, s, carol, true);
  await alice.sdk.createGroup('lab');
  await alice.sdk.addGroupMember('lab', 'carol');
  await carol.sdk.acceptInvitation('lab');
  const shared = await alice.sdk.registerFunction((x: number) => x * 3, { name: 'shared', group: 'lab' });
  const queued = await carol.sdk.run(ec.id, shared, 1);
  await until('carol holds the task', () => ec.heldTasks.length === 1);

  await status(bob.sdk.deleteFunction(shared), 403, "bob deletes alice's function");
  await status(carol.sdk.deleteFunction(shared), 403, 'a member deletes the function');
  await status(bob.sdk.deleteGroup('lab'), 403, "bob deletes alice's group");
  await status(carol.sdk.deleteGroup('lab'), 403, 'a member deletes the group');

  // The group goes: carol no longer reads or runs the function shared through it.
  await alice.sdk.deleteGroup('lab');
  assert.deepEqual((await carol.sdk.whoami()).groups, []);
  await status(carol.sdk.run(ec.id, shared, 2), 403, 'carol runs the function after the group was deleted');
  assert.equal((await api(s.url, carol.token, 'GET', `/v1/functions/${shared}`)).status, 403);

  // The function goes: 404 for its owner too, and a task still queued for it fails saying so.
  const ea = await endpoint(t, s, alice, true);
  const waitingTask = await alice.sdk.run(ea.id, shared, 3);
  await until('alice holds the task', () => ea.heldTasks.length === 1);
  await ea.close();
  await alice.sdk.deleteFunction(shared);
  assert.equal((await api(s.url, alice.token, 'GET', `/v1/functions/${shared}`)).status, 404);
  await status(alice.sdk.run(ea.id, shared, 4), 404, 'running a deleted function');
  const requeued = await FakeEndpoint.start(s.url, alice.token, { name: 'again', endpointId: ea.id, keys: ea.keys });
  t.after(() => requeued.close());
  await assert.rejects(alice.sdk.getResult(waitingTask, { waitMs: 30_000 }), (err: unknown) => {
    assert.ok(err instanceof RemoteError, String(err));
    assert.equal(err.remoteType, 'FunctionNotFound');
    return true;
  });
  void queued;
});

test('funcx-service user disable/enable/remove and token rotate, on a running service', async (t) => {
  const stack = await CliStack.start();
  t.after(() => stack.stop());
  const bobToken = /fx_[A-Za-z0-9_-]+/.exec((await runCli('service', ['user', 'add', 'bob'], stack.env)).stdout)![0];
  const bob = new FuncXClient({ serviceUrl: stack.url, token: bobToken });
  assert.equal((await bob.whoami()).name, 'bob');

  await runCli('service', ['user', 'disable', 'bob'], stack.env);
  await status(bob.whoami(), 401, 'a disabled user');
  await runCli('service', ['user', 'enable', 'bob'], stack.env);
  assert.equal((await bob.whoami()).name, 'bob');

  const rotated = /fx_[A-Za-z0-9_-]+/.exec((await runCli('service', ['token', 'rotate', 'bob'], stack.env)).stdout)![0];
  await status(bob.whoami(), 401, 'the token before rotation');
  const bob2 = new FuncXClient({ serviceUrl: stack.url, token: rotated });
  assert.equal((await bob2.whoami()).name, 'bob');

  await runCli('service', ['user', 'remove', 'bob'], stack.env);
  await status(bob2.whoami(), 401, 'a removed user');
  // The name is free again; the new bob is someone else and sees nothing of the old one.
  const again = /fx_[A-Za-z0-9_-]+/.exec((await runCli('service', ['user', 'add', 'bob'], stack.env)).stdout)![0];
  assert.equal((await new FuncXClient({ serviceUrl: stack.url, token: again }).whoami()).name, 'bob');
  await status(bob2.whoami(), 401, 'the removed user\'s token stays refused');
});
