/**
 * The real web service (fastify, SQLite, forwarders on ZeroMQ with CURVE) driven through the SDK, a fake
 * endpoint built from the real ForwarderClient, raw ZeroMQ peers and the real CLIs as child processes.
 * service-postgres.test.ts runs the same tests with the state in PostgreSQL (FUNCX_TEST_STORE=postgres).
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zmq from 'zeromq';
import { startService, type RunningService } from '../../src/service/api.js';
import { registerEndpoint } from '../../src/endpoint/service-link/registration.js';
import { FuncXClient } from '../../src/sdk/client.js';
import { ShellFunction } from '../../src/sdk/functions.js';
import { RemoteError, type ShellResult } from '../../src/sdk/serialize.js';
import { encode } from '../../src/protocol/codec.js';
import { encodeArgs } from '../../src/protocol/payload.js';
import { newKeyPair } from '../../src/protocol/keys.js';
import { PROTOCOL_VERSION } from '../../src/protocol/messages.js';
import { silentLogger } from '../../src/logger.js';
import { FakeEndpoint, removeFakeEndpointDirs } from '../helpers/fake-endpoint.js';
import type { ResultSpool } from '../../src/endpoint/service-link/result-spool.js';
import { until } from '../helpers/wait.js';
import { databaseEnv, databaseFor, dropTestDatabases } from '../helpers/store-backends.js';

const TIMINGS = { heartbeatPeriodMs: 100, heartbeatThresholdMs: 1500 };
const dirs: string[] = [];
const tmp = (p: string) => dirs[dirs.push(mkdtempSync(join(tmpdir(), `funcx-${p}-`))) - 1];
after(async () => {
  await dropTestDatabases();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  removeFakeEndpointDirs();
});
const CLI = (name: string) => fileURLToPath(new URL(`../../src/cli/${name}.js`, import.meta.url));

/** A service closed when the test ends, however it ends. */
async function service(t: TestContext, home = tmp('service')): Promise<RunningService> {
  const s = await startService({ home, database: await databaseFor(home), port: 0, ...TIMINGS, log: silentLogger });
  t.after(() => s.close());
  return s;
}

async function endpoint(t: TestContext, ...args: Parameters<typeof FakeEndpoint.start>): Promise<FakeEndpoint> {
  const ep = await FakeEndpoint.start(...args);
  t.after(() => ep.close());
  return ep;
}

async function user(s: RunningService, name: string): Promise<{ token: string; sdk: FuncXClient }> {
  const { token } = await s.store.createUser(name);
  return { token, sdk: new FuncXClient({ serviceUrl: s.url, token }) };
}

function run(cli: string, args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI(cli), ...args], { env: { ...process.env, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function http(s: RunningService, path: string, init: RequestInit = {}) {
  const r = await fetch(s.url + path, init);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

test('tokens: 401 without or with a wrong token, whoami with the right one; protocol mismatch names both versions', async (t) => {
  const s = await service(t);
  const { token, sdk } = await user(s, 'alice');
  const missing = await http(s, '/v1/whoami');
  assert.equal(missing.status, 401);
  assert.match(String(missing.body.message), /missing token.*Bearer/);
  const wrong = await http(s, '/v1/whoami', { headers: { authorization: 'Bearer fx_nope' } });
  assert.equal(wrong.status, 401);
  assert.match(String(wrong.body.message), /invalid token/);
  assert.equal((await sdk.whoami()).name, 'alice');
  const header = await http(s, '/v1/whoami', { headers: { authorization: `Bearer ${token}`, 'x-funcx-protocol': '99' } });
  assert.equal(header.status, 400);
  assert.equal(header.body.message, `protocol version mismatch: the client speaks version 99, the service speaks version ${PROTOCOL_VERSION}`);
  const reg = await http(s, '/v1/endpoints', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'x', publicKey: newKeyPair().publicKey, protocol: 99 }),
  });
  assert.equal(reg.status, 400);
  assert.match(String(reg.body.message), new RegExp(`endpoint speaks version 99, the service speaks version ${PROTOCOL_VERSION}`));
});

test('registration returns id, ports and key; someone else re-registering gets 403; service down is named', async (t) => {
  const s = await service(t);
  const alice = await user(s, 'alice');
  const bob = await user(s, 'bob');
  const keys = newKeyPair();
  const reg = await registerEndpoint(s.url, alice.token, { name: 'default', publicKey: keys.publicKey });
  assert.match(reg.endpointId, /^[0-9a-f-]{36}$/);
  assert.equal(reg.forwarder.host, '127.0.0.1');
  assert.equal(new Set(Object.values(reg.forwarder.ports)).size, 3);
  assert.equal(reg.forwarder.publicKey.length, 40);
  const again = await registerEndpoint(s.url, alice.token, { name: 'default', endpointId: reg.endpointId, publicKey: keys.publicKey });
  assert.deepEqual(again, reg, 'the owner re-registers to the same forwarder');
  await assert.rejects(registerEndpoint(s.url, bob.token, { name: 'mine', endpointId: reg.endpointId, publicKey: keys.publicKey }), {
    code: 'FORBIDDEN',
    message: `endpoint ${reg.endpointId} belongs to another user: only its owner can register or start it`,
  });
  await assert.rejects(registerEndpoint(s.url, 'fx_wrong', { name: 'x', publicKey: keys.publicKey }), { code: 'UNAUTHORIZED', message: /refused the token: invalid token/ });
  await assert.rejects(bob.sdk.getEndpoint(reg.endpointId), { status: 403 });
  // A port nobody listens on (the closed service's own may still have a pooled keep-alive connection here).
  const free = createServer();
  await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
  const down = `http://127.0.0.1:${(free.address() as AddressInfo).port}`;
  await new Promise((r) => free.close(r));
  await assert.rejects(registerEndpoint(down, 'fx_x', { name: 'x', publicKey: newKeyPair().publicKey }), {
    code: 'SERVICE_UNREACHABLE',
    message: `cannot reach the funcX service at ${down}: connection refused (is it running?)`,
  });
});

test('the forwarder refuses a peer with the wrong CURVE key: it gets nothing and nothing it sends counts', async (t) => {
  const s = await service(t);
  const alice = await user(s, 'alice');
  const keys = newKeyPair();
  const reg = await registerEndpoint(s.url, alice.token, { name: 'ep', publicKey: keys.publicKey });
  const fn = await alice.sdk.registerFunction((x: number) => x, { name: 'id' });
  const taskId = await alice.sdk.run(reg.endpointId, fn, 1);
  const dial = async (pair: { publicKey: string; secretKey: string }, forge: boolean) => {
    const d = new zmq.Dealer({ curveServerKey: reg.forwarder.publicKey, curvePublicKey: pair.publicKey, curveSecretKey: pair.secretKey, linger: 0 });
    d.connect(`tcp://127.0.0.1:${reg.forwarder.ports.tasks}`);
    await d.send(encode({ kind: 'hello', protocol: PROTOCOL_VERSION, endpointId: reg.endpointId, channel: 'tasks', session: 's', credit: 10 }));
    const r = new zmq.Dealer({ curveServerKey: reg.forwarder.publicKey, curvePublicKey: pair.publicKey, curveSecretKey: pair.secretKey, linger: 0 });
    r.connect(`tcp://127.0.0.1:${reg.forwarder.ports.results}`);
    if (forge) await r.send(encode({ kind: 'results', seq: 1, results: [{ id: taskId, failed: false, payload: Buffer.from('forged') }] }));
    return { d, r };
  };
  const wrong = await dial(newKeyPair(), true);
  // The positive event: the forwarder's ZAP handler refused both connections (tasks and results channels).
  await until('the forwarder to refuse both connections of the wrong key', () => s.forwarders.get(reg.endpointId)!.refusedCount >= 2);
  wrong.d.receiveTimeout = 0;
  await assert.rejects(wrong.d.receive(), { code: 'EAGAIN' }, 'nothing comes back to a wrong key');
  assert.equal((await alice.sdk.getEndpoint(reg.endpointId)).state, 'Inactive');
  assert.equal((await alice.sdk.getStatus(taskId)).state, 'waiting-for-endpoint', 'no credit and no result were taken from it');
  wrong.d.close();
  wrong.r.close();
  // The same bytes from the registered key are accepted: the refusal above was the key.
  const right = await dial(keys, false);
  const [welcome] = await right.d.receive();
  assert.match(welcome.toString('latin1'), /welcome/);
  // Heartbeats may come before the tasks (the store is a round trip away on PostgreSQL).
  let [tasks] = await right.d.receive();
  while (tasks.toString('latin1').includes('heartbeat')) [tasks] = await right.d.receive();
  assert.ok(tasks.includes(Buffer.from(taskId)));
  right.d.close();
  right.r.close();
});

test('tasks run through a real ForwarderClient; results come back by long-poll, with transitions', async (t) => {
  const s = await service(t);
  const alice = await user(s, 'alice');
  const ep = await endpoint(t, s.url, alice.token, { delayMs: 300 });
  const add = await alice.sdk.registerFunction(async function add(a: number, b: number) { return a + b; }, { name: 'add' });
  const boom = await alice.sdk.registerFunction(() => { throw new TypeError('boom'); }, { name: 'boom' });
  const started = Date.now();
  const id = await alice.sdk.run(ep.id, add, 2, 3);
  // The long-poll returns as soon as the result is stored: well before its 5 s wait, after the 300 ms delay.
  const view = await http(s, `/v1/tasks/${id}?wait=5`, { headers: { authorization: `Bearer ${alice.token}` } });
  const elapsed = Date.now() - started;
  assert.equal(view.body.state, 'success');
  assert.ok(elapsed >= 300 && elapsed < 1500, `answered after ${elapsed} ms`);
  assert.equal(await alice.sdk.getResult(id), 5);
  assert.equal(s.waiters.size, 0);
  await assert.rejects(alice.sdk.getResult(await alice.sdk.run(ep.id, boom)), (err: unknown) => err instanceof RemoteError && err.message === 'TypeError: boom');
  const sh = await alice.sdk.getResult<ShellResult>(await alice.sdk.run(ep.id, ShellFunction('echo {word}; exit 4'), { word: "it's" }));
  assert.deepEqual([sh.stdout, sh.returncode], ["it's\n", 4]);
  const transitions = await alice.sdk.getTransitions(id);
  assert.deepEqual(transitions.map((t) => `${t.state}/${t.actor}`), [
    'received/user:alice', 'waiting-for-endpoint/service', 'waiting-for-nodes/forwarder', 'running/endpoint', 'success/endpoint',
  ]);
  ep.delayMs = 0;
  const batch = alice.sdk.createBatch();
  for (let i = 0; i < 500; i++) batch.add(ep.id, add, i, 1);
  const ids = await alice.sdk.batchRun(batch);
  let progress = 0;
  const results = await alice.sdk.getBatchResults<number>(ids, { onProgress: (done) => (progress = done) });
  assert.deepEqual(results.map((r) => r.value), Array.from({ length: 500 }, (_, i) => i + 1));
  assert.equal(progress, 500);
  assert.equal(new Set(ep.executed).size, ep.executed.length, 'no task ran twice');
});

test('POST /v1/tasks?wait answers the finished task in the same reply (SDK call); one task only; run + getResult still work', async (t) => {
  const s = await service(t);
  const alice = await user(s, 'alice');
  const ep = await endpoint(t, s.url, alice.token, { delayMs: 200 });
  const add = await alice.sdk.registerFunction(async function add(a: number, b: number) { return a + b; }, { name: 'add' });
  const boom = await alice.sdk.registerFunction(() => { throw new TypeError('boom'); }, { name: 'boom' });
  const auth = { authorization: `Bearer ${alice.token}`, 'content-type': 'application/json' };
  const args = Buffer.from(encodeArgs([2, 3])).toString('base64');
  const submitted = await http(s, '/v1/tasks?wait=5', { method: 'POST', headers: auth, body: JSON.stringify({ tasks: [{ endpointId: ep.id, functionId: add, args }] }) });
  assert.equal(submitted.status, 200);
  const [id] = submitted.body.taskIds as string[];
  const finished = submitted.body.finished as Record<string, unknown>;
  assert.equal(finished.taskId, id);
  assert.equal(finished.state, 'success');
  assert.equal(finished.failed, false);
  // The same result a read gives.
  const read = await http(s, `/v1/tasks/${id}`, { headers: auth });
  for (const k of ['state', 'failed', 'result', 'endpointId', 'functionId', 'updatedAt']) assert.deepEqual(finished[k], read.body[k], k);
  assert.equal(s.waiters.size, 0);
  assert.equal(await alice.sdk.call<number>(ep.id, add, [20, 22]), 42);
  await assert.rejects(alice.sdk.call(ep.id, boom), (err: unknown) => err instanceof RemoteError && err.message === 'TypeError: boom');
  assert.equal(await alice.sdk.getResult(await alice.sdk.run(ep.id, add, 1, 2)), 3);
  // Not finished within the wait: the id alone; the SDK's call then says it is pending.
  ep.delayMs = 1500;
  const slow = await http(s, '/v1/tasks?wait=0.1', { method: 'POST', headers: auth, body: JSON.stringify({ tasks: [{ endpointId: ep.id, functionId: add, args }] }) });
  assert.equal(slow.status, 200);
  assert.equal(slow.body.finished, undefined);
  await assert.rejects(alice.sdk.call(ep.id, add, [1, 1], { waitMs: 100 }), /TASK_PENDING|still/);
  assert.equal(await alice.sdk.getResult((slow.body.taskIds as string[])[0], { waitMs: 5000 }), 5);
  assert.deepEqual((await alice.sdk.getBatchResults(ep.executed, { waitMs: 5000 })).filter((r) => r.pending), [], 'every task finished');
  const two = await http(s, '/v1/tasks?wait=5', { method: 'POST', headers: auth, body: JSON.stringify({ tasks: [{ endpointId: ep.id, functionId: add, args }, { endpointId: ep.id, functionId: add, args }] }) });
  assert.equal(two.status, 400);
  assert.match(String(two.body.message), /"wait" takes one task \(got 2\)/);
});

test('tasks queued while the endpoint is away are delivered when it connects; state follows heartbeats', async (t) => {
  const s = await service(t);
  const alice = await user(s, 'alice');
  const keys = newKeyPair();
  const reg = await registerEndpoint(s.url, alice.token, { name: 'ep', publicKey: keys.publicKey });
  const sq = await alice.sdk.registerFunction((x: number) => x * x, { name: 'sq' });
  const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => alice.sdk.run(reg.endpointId, sq, i)));
  assert.equal((await alice.sdk.getEndpoint(reg.endpointId)).queued, 20);
  const ep = await endpoint(t, s.url, alice.token, { endpointId: reg.endpointId, keys, window: 5 });
  const results = await alice.sdk.getBatchResults<number>(ids, { waitMs: 10_000 });
  assert.deepEqual(results.map((r) => r.value), Array.from({ length: 20 }, (_, i) => i * i));
  assert.ok(ep.maxBatch <= 5, `credit limits each delivery (saw ${ep.maxBatch})`);
  assert.equal((await alice.sdk.getEndpoint(reg.endpointId)).state, 'Active');
  ep.report = { queue: 7 };
  const status = await http(s, `/v1/endpoints/${reg.endpointId}/status`, { headers: { authorization: `Bearer ${alice.token}` } });
  assert.deepEqual(status.body.report, { queue: 7 });
  const auth = { authorization: `Bearer ${alice.token}` };
  assert.equal((await http(s, `/v1/endpoints/${reg.endpointId}/stop`, { method: 'POST', headers: auth })).status, 200);
  assert.equal(ep.stopRequested, true);
  await ep.close();
  await until('the endpoint to turn Inactive', async () => (await alice.sdk.getEndpoint(reg.endpointId)).state === 'Inactive');
  const gone = await http(s, `/v1/endpoints/${reg.endpointId}/status`, { headers: auth });
  assert.deepEqual([gone.status, gone.body.message], [409, `endpoint ${reg.endpointId} is not connected`]);
});

test('an endpoint restarted without answering gets its tasks again, and runs each once', async (t) => {
  const s = await service(t);
  const alice = await user(s, 'alice');
  const fn = await alice.sdk.registerFunction((x: number) => x + 100, { name: 'f' });
  const first = await endpoint(t, s.url, alice.token, { hold: true });
  const ids = [await alice.sdk.run(first.id, fn, 1), await alice.sdk.run(first.id, fn, 2)];
  await until('the first endpoint to hold both tasks', () => first.heldTasks.length === 2);
  await first.close(); // as if killed: it never answers
  const second = await endpoint(t, s.url, alice.token, { endpointId: first.id, keys: first.keys, resultsDir: first.resultsDir });
  assert.deepEqual((await alice.sdk.getBatchResults<number>(ids, { waitMs: 5000 })).map((r) => r.value), [101, 102]);
  assert.deepEqual([...second.executed].sort(), [...ids].sort());
});

test('results not acknowledged survive an endpoint and service restart, are sent again and not run twice', async (t) => {
  const home = tmp('service');
  const s1 = await service(t, home);
  const alice = await user(s1, 'alice');
  const fn = await alice.sdk.registerFunction((x: number) => `fresh ${x}`, { name: 'f' });
  const a = await endpoint(t, s1.url, alice.token, { hold: true });
  const ids = await Promise.all([1, 2, 3].map((x) => alice.sdk.run(a.id, fn, x)));
  await until('the endpoint to hold the tasks', () => a.heldTasks.length === 3);
  await s1.close(); // the forwarder is gone: nothing can be acknowledged now
  await a.answerHeld('from before the restart'); // resolves once the unacknowledged batch is on disk
  assert.equal(a.client.pendingBatches, 1);
  assert.deepEqual(readdirSync(a.resultsDir).filter((f) => f.endsWith('.batch')).length, 1, 'written before the close');
  await a.close();
  const files = readdirSync(a.resultsDir);
  assert.equal(files.length, 1);
  assert.equal(statSync(join(a.resultsDir, files[0])).mode & 0o777, 0o600);
  const s2 = await service(t, home); // the forwarder comes back on the same ports
  const sdk = new FuncXClient({ serviceUrl: s2.url, token: alice.token });
  const b = await endpoint(t, s2.url, alice.token, { endpointId: a.id, keys: a.keys, resultsDir: a.resultsDir, register: false, forwarder: a.forwarder });
  const results = await sdk.getBatchResults<string>(ids, { waitMs: 5000 });
  assert.deepEqual(results.map((r) => r.value), Array(3).fill('from before the restart'));
  await until('the batch to be acked and removed', () => readdirSync(a.resultsDir).length === 0);
  for (const id of ids) assert.equal((await sdk.getTransitions(id)).filter((t) => t.state === 'success').length, 1);
  // Still connected after the restart: new work flows without registering again.
  const fresh = await sdk.run(a.id, fn, 4);
  assert.equal(await sdk.getResult(fresh, { waitMs: 5000 }), 'fresh 4');
  // The tasks channel is ordered: redelivered tasks would have reached the endpoint before the fresh one.
  assert.deepEqual(b.executed, [fresh], 'the redelivered tasks were recognised and not run again');
});

test('results acknowledged at once are never written to disk; a batch not acknowledged in time is', async (t) => {
  const s = await service(t);
  const alice = await user(s, 'alice');
  const fn = await alice.sdk.registerFunction((x: number) => x * 2, { name: 'f' });
  const ep = await endpoint(t, s.url, alice.token, { hold: true, spoolAfterMs: 60_000 });
  const slow = await endpoint(t, s.url, alice.token, { name: 'slow', hold: true, spoolAfterMs: 50 });
  const persisted = (e: FakeEndpoint): number[] => {
    const spool = (e.client as unknown as { results: { spool: ResultSpool } }).results.spool;
    const seqs: number[] = [];
    const persist = spool.persist.bind(spool);
    spool.persist = (batch) => (seqs.push(batch.seq), persist(batch));
    return seqs;
  };
  const written = persisted(ep);
  const ids = await Promise.all([1, 2, 3].map((x) => alice.sdk.run(ep.id, fn, x)));
  await until('the endpoint to hold the tasks', () => ep.heldTasks.length === 3);
  await ep.answerHeld(7); // resolves on the ack: the service stored them
  assert.equal(ep.client.pendingBatches, 0);
  assert.deepEqual((await alice.sdk.getBatchResults<number>(ids, { waitMs: 5000 })).map((r) => r.value), [7, 7, 7]);
  assert.deepEqual(written, [], 'no batch was written');
  assert.deepEqual(readdirSync(ep.resultsDir), []);
  // The service stops acknowledging: a batch is written once unacknowledged for spoolAfterMs.
  const writtenSlow = persisted(slow);
  await alice.sdk.run(slow.id, fn, 4);
  await until('the endpoint to hold the task', () => slow.heldTasks.length === 1);
  await s.close();
  await slow.answerHeld(8); // resolves once on disk
  assert.equal(writtenSlow.length, 1, 'the unacknowledged batch was written');
  assert.equal(slow.client.pendingBatches, 1);
  assert.deepEqual(readdirSync(slow.resultsDir).filter((f) => f.endsWith('.batch')).length, 1);
});

test('a service restart with queued tasks loses none', async (t) => {
  const home = tmp('service');
  const s1 = await service(t, home);
  const alice = await user(s1, 'alice');
  const keys = newKeyPair();
  const reg = await registerEndpoint(s1.url, alice.token, { name: 'ep', publicKey: keys.publicKey });
  const fn = await alice.sdk.registerFunction((x: number) => -x, { name: 'neg' });
  const batch = alice.sdk.createBatch();
  for (let i = 0; i < 25; i++) batch.add(reg.endpointId, fn, i);
  const ids = await alice.sdk.batchRun(batch);
  await s1.close();
  const s2 = await service(t, home);
  const ep = await endpoint(t, s2.url, alice.token, { endpointId: reg.endpointId, keys });
  const sdk = new FuncXClient({ serviceUrl: s2.url, token: alice.token });
  assert.deepEqual((await sdk.getBatchResults<number>(ids, { waitMs: 5000 })).map((r) => r.value), Array.from({ length: 25 }, (_, i) => -i));
});

test('an endpoint whose forwarder moved (service restarted on other ports) registers again by itself', async (t) => {
  const home = tmp('service');
  const s1 = await service(t, home);
  const alice = await user(s1, 'alice');
  const keys = newKeyPair();
  let url = s1.url;
  const reregister = async () => (await registerEndpoint(url, alice.token, { name: 'ep', endpointId: ep.id, publicKey: keys.publicKey })).forwarder;
  const ep = await endpoint(t, s1.url, alice.token, { keys, reregister });
  const lost = new Promise<string>((r) => ep.client.once('lost', r));
  await s1.close();
  // Something else takes the old tasks port, so the restarted service must bind another one.
  const squatter = createServer().listen(ep.forwarder.ports.tasks, '127.0.0.1');
  t.after(() => squatter.close());
  const s2 = await service(t, home);
  url = s2.url;
  const moved = s2.forwarders.get(ep.id)!.address();
  assert.notEqual(moved.ports.tasks, ep.forwarder.ports.tasks);
  const sdk = new FuncXClient({ serviceUrl: s2.url, token: alice.token });
  const fn = await sdk.registerFunction((x: number) => x * 10, { name: 'f' });
  assert.equal(await sdk.getResult(await sdk.run(ep.id, fn, 4), { waitMs: 10_000 }), 40);
  assert.match(await lost, /no answer from the forwarder/);
});

test('a function shared with a group runs for its members only', async (t) => {
  const s = await service(t);
  const alice = await user(s, 'alice');
  const bob = await user(s, 'bob');
  const carol = await user(s, 'carol');
  const group = await alice.sdk.createGroup('lab');
  await alice.sdk.addGroupMember('lab', 'bob');
  await bob.sdk.acceptInvitation('lab');
  await assert.rejects(bob.sdk.addGroupMember(group, 'carol'), { status: 403, message: /only a group's owner can invite members/ });
  const fn = await alice.sdk.registerFunction((s: string) => s.toUpperCase(), { name: 'up', group: 'lab' });
  const bobEp = await endpoint(t, s.url, bob.token);
  const carolEp = await endpoint(t, s.url, carol.token);
  const aliceEp = await endpoint(t, s.url, alice.token);
  assert.equal(await bob.sdk.getResult(await bob.sdk.run(bobEp.id, fn, 'hi')), 'HI');
  await assert.rejects(carol.sdk.run(carolEp.id, fn, 'hi'), {
    status: 403,
    message: `function ${fn} belongs to another user and is not shared with you (ask its owner to add you to its group)`,
  });
  await assert.rejects(bob.sdk.run(aliceEp.id, fn, 'hi'), { status: 403, message: /endpoint .* belongs to another user/ });
  assert.deepEqual(carolEp.executed, []);
});

test('funcx-service start/status/user add/stop as a user runs them', async (t) => {
  const home = tmp('cli-service');
  const env = { FUNCX_SERVICE_HOME: home, ...(await databaseEnv(home)) };
  t.after(() => run('service', ['stop', '--grace', '1'], env)); // even when an assertion below fails
  const migrated = await run('service', ['migrate'], env);
  assert.equal(migrated.code, 0, migrated.stderr);
  assert.match(migrated.stdout, /(SQLite|PostgreSQL) database .* is at schema version \d+/);
  assert.ok(!/funcx_test:funcx_test@/.test(migrated.stdout), 'the password is not printed');
  const started = await run('service', ['start', '--port', '0'], env);
  assert.equal(started.code, 0, started.stderr);
  const url = /running at (http:\/\/\S+) /.exec(started.stdout)?.[1];
  assert.ok(url, started.stdout);
  assert.equal((await run('service', ['start', '--port', '0'], env)).code, 2, 'a second start says it is already running');
  assert.match((await run('service', ['status'], env)).stdout, /is running at/);
  const added = await run('service', ['user', 'add', 'dana'], env);
  const token = added.stdout.trim();
  assert.match(token, /^fx_/);
  const me = await fetch(`${url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(((await me.json()) as { name: string }).name, 'dana');
  const stopped = await run('service', ['stop'], env);
  assert.match(stopped.stdout, /stopped \(pid \d+\)/);
  const status = await run('service', ['status'], env);
  assert.equal(status.code, 3);
  assert.match(status.stdout, /not running/);
});

test('funcx register-function / run / shell / endpoints / whoami against a live endpoint', async (t) => {
  const s = await service(t);
  const alice = await user(s, 'alice');
  const ep = await endpoint(t, s.url, alice.token, { name: 'laptop' });
  const home = tmp('funcx-home');
  writeFileSync(join(home, 'credentials.json'), JSON.stringify({ serviceUrl: s.url, token: alice.token }), { mode: 0o600 });
  const env = { FUNCX_HOME: home, FUNCX_TOKEN: '', FUNCX_SERVICE_URL: '' };
  delete (env as Record<string, string>).FUNCX_TOKEN;
  delete (env as Record<string, string>).FUNCX_SERVICE_URL;
  const dir = tmp('funcs');
  writeFileSync(join(dir, 'add.ts'), 'export default function add(a: number, b: number): number {\n  const twice = (x: number) => x * 2;\n  return twice(a) + b;\n}\n');
  writeFileSync(join(dir, 'fail.mjs'), 'export default function fail() { throw new RangeError("too far"); }\n');
  const reg = await run('funcx', ['register-function', join(dir, 'add.ts'), '--name', 'add'], env);
  assert.equal(reg.code, 0, reg.stderr);
  const fnId = reg.stdout.trim();
  const ran = await run('funcx', ['run', '--endpoint', ep.id, '--function', fnId, '--args', '[2, 3]'], env);
  assert.deepEqual([ran.code, ran.stdout], [0, '7\n'], ran.stderr);
  const failId = (await run('funcx', ['register-function', join(dir, 'fail.mjs'), '--name', 'fail'], env)).stdout.trim();
  const failed = await run('funcx', ['run', '--endpoint', ep.id, '--function', failId], env);
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /^Error: task [0-9a-f-]{36} failed: RangeError: too far\n$/);
  const sh = await run('funcx', ['shell', '--endpoint', ep.id, '--', 'echo hello; exit 3'], env);
  assert.deepEqual([sh.code, sh.stdout], [3, 'hello\n']);
  const list = await run('funcx', ['endpoints'], env);
  assert.match(list.stdout, /^Endpoint Name\s+Status\s+Owner\s+Queued\s+Endpoint ID\n/);
  assert.match(list.stdout, new RegExp(`laptop\\s+Active\\s+alice\\s+0\\s+${ep.id}\\n`));
  assert.match((await run('funcx', ['whoami'], env)).stdout, /^alice \(/);
  const denied = await run('funcx', ['whoami'], { ...env, FUNCX_TOKEN: 'fx_wrong' });
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /^Error: invalid token/);
  const bad = await run('funcx', ['run', '--endpoint', ep.id, '--function', fnId, '--args', '{"a":1}'], env);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /must be a JSON array/);
});
