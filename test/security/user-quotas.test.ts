/**
 * Quotas per user: `funcx-service user quota NAME --tasks N ...` overrides the service's quotas for one
 * user (others keep the service's); stored result bytes have a quota too: past it, submissions get 429
 * naming the quota, the use and the limit, with Retry-After, and nothing of the batch is written; deleting
 * finished tasks frees it. So do the bytes of stored function sources (deleting a function frees them).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { RunningService } from '../../src/service/api.js';
import { PgStore, SqliteStore } from '../../src/service/store/index.js';
import { ServiceError } from '../../src/sdk/client.js';
import { FakeEndpoint, removeFakeEndpointDirs } from '../helpers/fake-endpoint.js';
import { until } from '../helpers/wait.js';
import { addUser, api, inProcessService, runCli, type TestUser } from './harness.js';

test.after(() => removeFakeEndpointDirs());

async function endpoint(t: TestContext, s: RunningService, user: TestUser, hold = false): Promise<FakeEndpoint> {
  const ep = await FakeEndpoint.start(s.url, user.token, { name: `${user.name}-ep`, hold });
  t.after(() => ep.close());
  return ep;
}

async function serviceCli(s: RunningService, args: string[]): Promise<string> {
  const db = s.store instanceof SqliteStore ? s.store.path : (s.store as PgStore).url;
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FUNCX_')) env[k] = v;
  return (await runCli('service', [...args, '--database', db], env)).stdout;
}

async function overQuota(call: Promise<unknown>, quota: string, limit: number): Promise<ServiceError> {
  let caught: ServiceError | undefined;
  await assert.rejects(call, (err: unknown) => {
    assert.ok(err instanceof ServiceError, `expected a ServiceError, got ${String(err)}`);
    assert.equal(err.status, 429, err.message);
    assert.equal(err.details.quota, quota, err.message);
    assert.equal(err.details.limit, limit);
    caught = err;
    return true;
  });
  return caught!;
}

type QuotaRow = { quota: string; limit: number; own: boolean; used: number };
const quotaRows = async (s: RunningService, args: string[]) =>
  Object.fromEntries((JSON.parse(await serviceCli(s, ['user', 'quota', ...args, '--json'])) as { quotas: QuotaRow[] }).quotas.map((r) => [r.quota, r]));

test("funcx-service user quota: one user's own quotas; the others keep the service's; --reset", async (t) => {
  const s = await inProcessService(t, { quotas: { tasks: 100, functions: 3 } });
  const alice = await addUser(s, 'alice');
  const bob = await addUser(s, 'bob');
  const rows = await quotaRows(s, ['alice', '--tasks', '2', '--functions', '1']);
  assert.deepEqual([rows.tasks.limit, rows.tasks.own, rows.functions.limit, rows.functions.own, rows.endpoints.own], [2, true, 1, true, false]);
  await assert.rejects(serviceCli(s, ['user', 'quota', 'alice', '--tasks', '-1']), /whole number/);
  await assert.rejects(serviceCli(s, ['user', 'quota', 'nobody', '--tasks', '1']), /no user named nobody/);

  const f = await alice.sdk.registerFunction((x: number) => x, { name: 'f' });
  await overQuota(alice.sdk.registerFunction((x: number) => x, { name: 'g' }), 'functions', 1);
  for (const name of ['b1', 'b2', 'b3']) await bob.sdk.registerFunction((x: number) => x, { name });
  await overQuota(bob.sdk.registerFunction((x: number) => x, { name: 'b4' }), 'functions', 3);

  const ep = await endpoint(t, s, alice, true);
  const batch = alice.sdk.createBatch();
  for (let i = 0; i < 3; i++) batch.add(ep.id, f, i);
  const err = await overQuota(alice.sdk.batchRun(batch), 'tasks', 2);
  assert.equal(err.details.used, 0);
  assert.equal(await s.store.countQueued(ep.id), 0, 'nothing of the refused batch was written');
  assert.deepEqual((await api(s.url, alice.token, 'GET', '/v1/quotas')).body.quotas, { tasks: 2, functions: 1, endpoints: 50, resultBytes: 10 * 1024 ** 3, groups: 100, invitations: 1_000, inbox: 100, functionBytes: 64 * 1024 ** 2 });

  const reset = await quotaRows(s, ['alice', '--reset']);
  assert.deepEqual([reset.tasks.limit, reset.tasks.own, reset.functions.used], [100_000, false, 1], 'the CLI shows the built-in defaults and the use');
  await alice.sdk.batchRun(batch);
  await alice.sdk.registerFunction((x: number) => x, { name: 'g' });
});

test('stored result bytes: past the quota submissions get 429 (nothing written) until finished tasks are deleted', async (t) => {
  const s = await inProcessService(t, { quotas: { resultBytes: 1024 * 1024 } });
  const alice = await addUser(s, 'alice');
  const bob = await addUser(s, 'bob');
  const ep = await endpoint(t, s, alice);
  const big = await alice.sdk.registerFunction((n: number) => 'x'.repeat(n), { name: 'big' });
  await serviceCli(s, ['user', 'quota', 'alice', '--result-bytes', '5KiB']);

  const first = await alice.sdk.run(ep.id, big, 3000);
  assert.equal(((await alice.sdk.getResult(first, { waitMs: 20_000 })) as string).length, 3000);
  const usage1 = (await api(s.url, alice.token, 'GET', '/v1/quotas')).body.usage as Record<string, number>;
  assert.ok(usage1.resultBytes >= 3000 && usage1.resultBytes < 4000, `one result counted: ${JSON.stringify(usage1)}`);
  const second = await alice.sdk.run(ep.id, big, 3000);
  await alice.sdk.getResult(second, { waitMs: 20_000 });

  const before = (await api(s.url, alice.token, 'GET', '/v1/quotas')).body.usage as Record<string, number>;
  const refused = await api(s.url, alice.token, 'POST', '/v1/tasks', { tasks: [{ endpointId: ep.id, functionId: big, args: '' }] });
  assert.equal(refused.status, 429);
  assert.equal(refused.body.quota, 'resultBytes');
  assert.equal(refused.body.used, before.resultBytes);
  assert.equal(refused.body.limit, 5 * 1024);
  assert.match(String(refused.body.message), /over your quota of resultBytes: \d+ in use, the limit is 5120 \(delete finished tasks/);
  assert.ok(Number(refused.headers['retry-after']) >= 1);
  assert.deepEqual((await api(s.url, alice.token, 'GET', '/v1/quotas')).body.usage, before, 'nothing was written');
  // Bob has his own (the service's 1 MiB).
  const eb = await endpoint(t, s, bob);
  const bobs = await bob.sdk.registerFunction((n: number) => 'y'.repeat(n), { name: 'big' });
  assert.equal(((await bob.sdk.getResult(await bob.sdk.run(eb.id, bobs, 6000), { waitMs: 20_000 })) as string).length, 6000);

  // Only finished tasks of one's own can be deleted; deleting frees the quota.
  assert.equal((await api(s.url, bob.token, 'DELETE', `/v1/tasks/${first}`)).status, 403);
  assert.equal((await api(s.url, alice.token, 'DELETE', `/v1/tasks/${first}`)).status, 200);
  assert.equal((await api(s.url, alice.token, 'GET', `/v1/tasks/${first}`)).status, 404);
  const after = (await api(s.url, alice.token, 'GET', '/v1/quotas')).body.usage as Record<string, number>;
  assert.equal(after.resultBytes, before.resultBytes - usage1.resultBytes);
  const third = await alice.sdk.run(ep.id, big, 10);
  assert.equal(await alice.sdk.getResult(third, { waitMs: 20_000 }), 'x'.repeat(10));

  // An unfinished task cannot be deleted.
  const held = await endpoint(t, s, alice, true);
  const running = await alice.sdk.run(held.id, big, 1);
  await until('the task is held', () => held.heldTasks.length === 1);
  assert.equal((await api(s.url, alice.token, 'DELETE', `/v1/tasks/${running}`)).status, 409);
});

test('stored function bytes: past the quota a registration gets 429 naming functionBytes and nothing is stored; deleting frees it; a user can have their own', async (t) => {
  // Before this quota, only the count of functions was limited (1,000 of up to 1M characters each: 1 GiB a
  // user); all three 100 kB sources were stored past a 250 kB limit.
  const s = await inProcessService(t, { quotas: { functionBytes: 250_000 } });
  const alice = await addUser(s, 'alice');
  const bob = await addUser(s, 'bob');
  const source = (n: number) => `() => 1 /* ${'y'.repeat(n - 14)} */`; // n bytes
  const a1 = await alice.sdk.registerFunction(source(100_000), { name: 'a1' });
  await alice.sdk.registerFunction(source(100_000), { name: 'a2' });
  const usage = async (u: TestUser) => (await api(s.url, u.token, 'GET', '/v1/quotas')).body as { quotas: Record<string, number>; usage: Record<string, number> };
  assert.equal((await usage(alice)).usage.functionBytes, 200_000);
  assert.equal((await usage(alice)).quotas.functionBytes, 250_000);

  const refused = await api(s.url, alice.token, 'POST', '/v1/functions', { name: 'a3', source: source(100_000) });
  assert.equal(refused.status, 429, JSON.stringify(refused.body));
  assert.equal(refused.body.code, 'QUOTA_EXCEEDED');
  assert.deepEqual([refused.body.quota, refused.body.used, refused.body.limit], ['functionBytes', 200_000, 250_000]);
  assert.match(String(refused.body.message), /over your quota of functionBytes: 200000 in use, 100000 more asked, the limit is 250000 \(delete some functions/);
  assert.ok(Number(refused.headers['retry-after']) >= 1);
  assert.deepEqual([(await usage(alice)).usage.functions, (await usage(alice)).usage.functionBytes], [2, 200_000], 'nothing was stored');
  // Multi-byte characters count as the bytes they take (é is 2 bytes in UTF-8).
  await overQuota(alice.sdk.registerFunction(`() => "${'é'.repeat(25_001)}"`, { name: 'accents' }), 'functionBytes', 250_000);
  await alice.sdk.registerFunction(`() => "${'é'.repeat(24_990)}"`, { name: 'accents' });
  assert.equal((await usage(alice)).usage.functionBytes, 200_000 + 8 + 2 * 24_990);

  // Bob has his own; deleting frees alice's.
  await bob.sdk.registerFunction(source(200_000), { name: 'b1' });
  assert.equal((await api(s.url, alice.token, 'DELETE', `/v1/functions/${a1}`)).status, 200);
  assert.equal((await usage(alice)).usage.functionBytes, 100_000 + 8 + 2 * 24_990);
  await alice.sdk.registerFunction(source(100_000), { name: 'a3' });

  // One user's own quota (funcx-service user quota --function-bytes), shown with the use.
  const rows = await quotaRows(s, ['bob', '--function-bytes', '1MiB']);
  assert.deepEqual([rows.functionBytes.limit, rows.functionBytes.own, rows.functionBytes.used], [1024 ** 2, true, 200_000]);
  await bob.sdk.registerFunction(source(500_000), { name: 'b2' });
  await overQuota(alice.sdk.registerFunction(source(100_000), { name: 'a4' }), 'functionBytes', 250_000);
});
