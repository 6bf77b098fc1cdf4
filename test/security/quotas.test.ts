/**
 * Per-user quotas and forwarder ports: one user cannot take what the service has for everyone. Over a quota
 * is a 429 naming the quota, its use and limit, with Retry-After, and nothing of the request is written;
 * a registration that gets no forwarder ports saves nothing; deleting an endpoint frees its ports.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { request } from 'node:http';
import type { RunningService } from '../../src/service/api.js';
import { registerEndpoint } from '../../src/endpoint/service-link/registration.js';
import { newKeyPair } from '../../src/protocol/keys.js';
import { PROTOCOL_VERSION } from '../../src/protocol/forwarder-messages.js';
import { ServiceError } from '../../src/sdk/client.js';
import { FakeEndpoint, removeFakeEndpointDirs } from '../helpers/fake-endpoint.js';
import { until } from '../helpers/wait.js';
import { addUser, api, CliStack, inProcessService, localProfile, runCli, type TestUser } from './harness.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

test.after(() => removeFakeEndpointDirs());

async function endpoint(t: TestContext, s: RunningService, user: TestUser, hold = false): Promise<FakeEndpoint> {
  const ep = await FakeEndpoint.start(s.url, user.token, { name: `${user.name}-ep`, hold });
  t.after(() => ep.close());
  return ep;
}

/** The SDK call fails with 429 naming this quota. */
async function overQuota(call: Promise<unknown>, quota: string, used: number, limit: number): Promise<void> {
  await assert.rejects(call, (err: unknown) => {
    assert.ok(err instanceof ServiceError, `expected a ServiceError, got ${String(err)}`);
    assert.equal(err.status, 429, err.message);
    assert.equal(err.code, 'QUOTA_EXCEEDED');
    assert.equal(err.details.quota, quota);
    assert.equal(err.details.used, used);
    assert.equal(err.details.limit, limit);
    assert.match(err.message, new RegExp(`${quota}`));
    return true;
  });
}

/** Three consecutive loopback ports nobody listens on now. */
async function freeRange(): Promise<[number, number]> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
  for (let base = 20_000 + (process.pid % 1000) * 30; base < 60_000; base += 7) {
    if ((await free(base)) && (await free(base + 1)) && (await free(base + 2))) return [base, base + 2];
  }
  throw new Error('no three free consecutive ports');
}

test('quotas on unfinished tasks, functions and endpoints: 429 naming the quota, nothing half-written', async (t) => {
  const s = await inProcessService(t, { quotas: { tasks: 5, functions: 2, endpoints: 1 } });
  const alice = await addUser(s, 'alice');
  const bob = await addUser(s, 'bob');

  const f1 = await alice.sdk.registerFunction((x: number) => x, { name: 'f1' });
  await alice.sdk.registerFunction((x: number) => x, { name: 'f2' });
  await overQuota(alice.sdk.registerFunction((x: number) => x, { name: 'f3' }), 'functions', 2, 2);

  const ep = await endpoint(t, s, alice, true);
  // The same endpoint registering again is no new endpoint; another one is.
  await registerEndpoint(s.url, alice.token, { name: 'again', endpointId: ep.id, publicKey: ep.keys.publicKey });
  await assert.rejects(registerEndpoint(s.url, alice.token, { name: 'second', publicKey: newKeyPair().publicKey }), /answered 429: over your quota of endpoints: 1 in use/);
  const second = await api(s.url, alice.token, 'POST', '/v1/endpoints', { name: 'second', publicKey: newKeyPair().publicKey, protocol: PROTOCOL_VERSION });
  assert.equal(second.status, 429);
  assert.deepEqual([second.body.quota, second.body.used, second.body.limit], ['endpoints', 1, 1]);
  assert.equal((await alice.sdk.listEndpoints()).length, 1, 'the refused endpoint was not saved');

  const batch = alice.sdk.createBatch();
  for (let i = 0; i < 4; i++) batch.add(ep.id, f1, i);
  await alice.sdk.batchRun(batch);
  const over = alice.sdk.createBatch();
  for (let i = 0; i < 3; i++) over.add(ep.id, f1, i);
  await overQuota(alice.sdk.batchRun(over), 'tasks', 4, 5);
  const raw = await api(s.url, alice.token, 'POST', '/v1/tasks', { tasks: over.tasks });
  assert.equal(raw.status, 429);
  assert.ok(Number(raw.headers['retry-after']) >= 1, `Retry-After: ${raw.headers['retry-after']}`);
  await until('4 tasks held by the endpoint', () => ep.heldTasks.length === 4);
  assert.equal(await s.store.countQueued(ep.id), 0, 'none of the refused batch was queued');
  await alice.sdk.run(ep.id, f1, 5);
  await overQuota(alice.sdk.run(ep.id, f1, 6), 'tasks', 5, 5);

  // Finished tasks free the quota; other users have their own.
  await until('5 tasks held', () => ep.heldTasks.length === 5);
  await ep.answerHeld(1);
  // answerHeld resolves once the batch is on the endpoint's disk; the quota frees once the service stored it.
  await until('the service to acknowledge the 5 results', () => ep.client.pendingBatches === 0);
  await alice.sdk.run(ep.id, f1, 7);
  await bob.sdk.registerFunction((x: number) => x, { name: 'b1' });
  await bob.sdk.registerFunction((x: number) => x, { name: 'b2' });
});

test('a registration that gets no forwarder ports saves nothing; deleting an endpoint frees its ports', async (t) => {
  const s = await inProcessService(t, { forwarderPortRange: await freeRange() });
  const alice = await addUser(s, 'alice');
  const bob = await addUser(s, 'bob');
  const ea = await endpoint(t, s, alice);
  const fn = await alice.sdk.registerFunction((x: number) => x + 1, { name: 'inc' });
  assert.equal(await alice.sdk.getResult(await alice.sdk.run(ea.id, fn, 1), { waitMs: 30_000 }), 2);

  const bobKeys = newKeyPair();
  await assert.rejects(registerEndpoint(s.url, bob.token, { name: 'bob-ep', publicKey: bobKeys.publicKey }), (err: unknown) => {
    assert.match(String((err as Error).message), /no free forwarder port/);
    return true;
  });
  assert.deepEqual(await bob.sdk.listEndpoints(), [], "bob's refused registration left no endpoint behind");

  // Only the owner deletes; then the ports are free for bob.
  assert.equal((await api(s.url, bob.token, 'DELETE', `/v1/endpoints/${ea.id}`)).status, 403);
  const del = await api(s.url, alice.token, 'DELETE', `/v1/endpoints/${ea.id}`);
  assert.equal(del.status, 200, JSON.stringify(del.body));
  assert.equal((await api(s.url, alice.token, 'GET', `/v1/endpoints/${ea.id}`)).status, 404);
  assert.equal(s.forwarders.get(ea.id), undefined, 'its forwarder is closed');
  const reg = await registerEndpoint(s.url, bob.token, { name: 'bob-ep', publicKey: bobKeys.publicKey });
  assert.equal((await bob.sdk.getEndpoint(reg.endpointId)).name, 'bob-ep');
});

test('`funcx-endpoint delete` unregisters the endpoint at the service, and says so when it cannot', async (t) => {
  const stack = await CliStack.start();
  t.after(() => stack.stop());
  stack.writeProfile(localProfile());
  const id = await stack.startEndpoint();
  await runCli('endpoint', ['stop'], stack.env);
  assert.deepEqual((await stack.sdk.listEndpoints()).map((e) => e.endpointId), [id]);
  const deleted = await runCli('endpoint', ['delete', 'default', '--yes'], stack.env);
  assert.match(deleted.stdout, new RegExp(`unregistered ${id}`));
  assert.deepEqual(await stack.sdk.listEndpoints(), [], 'the service forgot the endpoint');

  // A second endpoint, registered, then the service goes away: the folder is kept unless --local-only.
  await runCli('endpoint', ['configure', 'second'], stack.env);
  await runCli('endpoint', ['start', 'second'], { ...stack.env, FUNCX_TOKEN: stack.token });
  await runCli('endpoint', ['stop', 'second'], stack.env);
  await stack.stopProcesses();
  await assert.rejects(runCli('endpoint', ['delete', 'second', '--yes'], stack.env), /was not deleted: the service could not be told: cannot reach the funcX service/);
  assert.ok(existsSync(join(stack.home, 'second')));
  const local = await runCli('endpoint', ['delete', 'second', '--yes', '--local-only'], stack.env);
  assert.match(local.stderr, /stays registered there/);
  assert.equal(existsSync(join(stack.home, 'second')), false);
});

test('submission rate: a user past her rate gets 429 with Retry-After and nothing written; others are not held back; the SDK waits it out', async (t) => {
  // Before the rate limit, both of mallory's batches were accepted (2,000 tasks queued in the same second).
  const s = await inProcessService(t, { taskRatePerUser: 200, maxBatch: 1000 });
  const mallory = await addUser(s, 'mallory');
  const alice = await addUser(s, 'alice');
  const mep = await endpoint(t, s, mallory);
  const aep = await endpoint(t, s, alice);
  const mf = await mallory.sdk.registerFunction((x: number) => x, { name: 'm' });
  const af = await alice.sdk.registerFunction((x: number) => x, { name: 'a' });
  const tasks = (ep: string, fn: string, n: number) => Array.from({ length: n }, () => ({ endpointId: ep, functionId: fn, args: '' }));

  assert.equal((await api(s.url, mallory.token, 'POST', '/v1/tasks', { tasks: tasks(mep.id, mf, 1000) })).status, 200, 'a whole burst');
  const over = await api(s.url, mallory.token, 'POST', '/v1/tasks', { tasks: tasks(mep.id, mf, 1000) });
  assert.equal(over.status, 429, JSON.stringify(over.body));
  assert.equal(over.body.code, 'RATE_LIMITED');
  assert.equal(over.body.quota, 'taskRate');
  assert.match(String(over.body.message), /over your submission rate of 200 tasks\/s \(bursts up to 1000\): 1000 asked/);
  assert.ok(Number(over.headers['retry-after']) >= 1, `Retry-After: ${over.headers['retry-after']}`);
  await until('the first 1,000 to run on mallory\'s endpoint', () => mep.executed.length === 1000);
  assert.equal(await s.store.countQueued(mep.id), 0, 'none of the refused batch was queued');
  assert.equal(mep.executed.length, 1000);

  // Alice has a bucket of her own.
  assert.equal((await api(s.url, alice.token, 'POST', '/v1/tasks', { tasks: tasks(aep.id, af, 1000) })).status, 200);

  // The SDK waits as the service says and sends again: 300 more go through within a few seconds.
  const batch = mallory.sdk.createBatch();
  for (let i = 0; i < 300; i++) batch.add(mep.id, mf, i);
  assert.equal((await mallory.sdk.batchRun(batch)).length, 300);
  await until('all 1,300 run on mallory\'s endpoint', () => mep.executed.length === 1300);
});

test('function registration rate: past her bytes a second a user gets 429 RATE_LIMITED on the headers alone, nothing stored; others are not held back; the SDK waits it out', async (t) => {
  // Before this rate, mallory's three 120 kB registrations were all stored at once, each body read, parsed,
  // scanned and compiled on the service's one event loop.
  const s = await inProcessService(t, { functionRateBytesPerUser: 20_000, maxFunctionBodyBytes: 300_000 });
  const mallory = await addUser(s, 'mallory');
  const alice = await addUser(s, 'alice');
  const source = (n: number) => `() => 1 /* ${'y'.repeat(n - 14)} */`; // n bytes
  const functions = async (u: TestUser) => ((await api(s.url, u.token, 'GET', '/v1/quotas')).body.usage as Record<string, number>).functions;

  for (const name of ['m1', 'm2']) assert.equal((await api(s.url, mallory.token, 'POST', '/v1/functions', { name, source: source(120_000) })).status, 200, 'within the burst');
  const over = await api(s.url, mallory.token, 'POST', '/v1/functions', { name: 'm3', source: source(120_000) });
  assert.equal(over.status, 429, JSON.stringify(over.body));
  assert.equal(over.body.code, 'RATE_LIMITED');
  assert.equal(over.body.quota, 'functionRate');
  assert.match(String(over.body.message), /over your function registration rate of 20000 bytes\/s \(bursts up to 300000\): 12\d{4} bytes asked/);
  assert.ok(Number(over.headers['retry-after']) >= 1, `Retry-After: ${over.headers['retry-after']}`);
  assert.equal(await functions(mallory), 2, 'the refused function was not stored');

  // Refused on its headers: a body announced and never sent gets its 429 all the same.
  const announced = await new Promise<number>((resolve, reject) => {
    const req = request(`${s.url}/v1/functions`, { method: 'POST', headers: { authorization: `Bearer ${mallory.token}`, 'content-type': 'application/json', 'content-length': '200000' } });
    req.on('response', (res) => (res.resume(), resolve(res.statusCode ?? 0), req.destroy()));
    req.on('error', reject);
    req.flushHeaders();
  });
  assert.equal(announced, 429);

  // Alice has a bucket of her own.
  assert.equal((await api(s.url, alice.token, 'POST', '/v1/functions', { name: 'a1', source: source(120_000) })).status, 200);
  // The SDK waits as the service says and sends again.
  await mallory.sdk.registerFunction(source(120_000), { name: 'm3' });
  assert.equal(await functions(mallory), 3);
});

test('function registration rate: a body over the size limit gets 413 every time, and takes nothing from the rate', async (t) => {
  // Before, the oversized body was charged a whole burst before its size was refused: the first got 413
  // BODY_TOO_LARGE, the next 429 RATE_LIMITED (an error naming the wrong cause), and a proper registration
  // right after it was held back.
  const s = await inProcessService(t, { functionRateBytesPerUser: 1_000, maxFunctionBodyBytes: 100_000 });
  const bob = await addUser(s, 'bob');
  for (let i = 0; i < 3; i++) {
    const r = await api(s.url, bob.token, 'POST', '/v1/functions', { name: `big${i}`, source: `() => 1 /* ${'z'.repeat(150_000)} */` });
    assert.equal(r.status, 413, `attempt ${i}: ${JSON.stringify(r.body).slice(0, 200)}`);
    assert.equal(r.body.code, 'BODY_TOO_LARGE');
  }
  const ok = await api(s.url, bob.token, 'POST', '/v1/functions', { name: 'small', source: `() => 1 /* ${'z'.repeat(90_000)} */` });
  assert.equal(ok.status, 200, JSON.stringify(ok.body).slice(0, 200));
});
