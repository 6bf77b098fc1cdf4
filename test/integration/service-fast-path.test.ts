/**
 * The service's task path written with fewer writes (issue 14 item 3): a start the endpoint reports goes
 * into the database with the next result batch, or alone when no result comes soon; either way every task
 * keeps its whole history, and no result is lost or given to another task. Runs on the back end named by
 * FUNCX_TEST_STORE (sqlite by default; postgres under the cluster lock).
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startService, type RunningService } from '../../src/service/api.js';
import { FuncXClient } from '../../src/sdk/client.js';
import { silentLogger } from '../../src/logger.js';
import { FakeEndpoint, removeFakeEndpointDirs } from '../helpers/fake-endpoint.js';
import { untilValue } from '../helpers/wait.js';
import { databaseFor, dropTestDatabases } from '../helpers/store-backends.js';

const dirs: string[] = [];
after(async () => {
  await dropTestDatabases();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  removeFakeEndpointDirs();
});

async function setUp(t: TestContext, hold: boolean): Promise<{ s: RunningService; sdk: FuncXClient; ep: FakeEndpoint }> {
  const home = dirs[dirs.push(mkdtempSync(join(tmpdir(), 'funcx-fast-path-'))) - 1];
  const s = await startService({ home, database: await databaseFor(home), port: 0, heartbeatPeriodMs: 100, heartbeatThresholdMs: 1500, log: silentLogger });
  t.after(() => s.close());
  const { token } = await s.store.createUser('alice');
  const ep = await FakeEndpoint.start(s.url, token, { hold, window: 1000 });
  t.after(() => ep.close());
  return { s, sdk: new FuncXClient({ serviceUrl: s.url, token }), ep };
}

const FULL = ['received/user:alice', 'waiting-for-endpoint/service', 'waiting-for-nodes/forwarder', 'running/endpoint', 'success/endpoint'];

test('a batch whose starts and results come together: every result in its place, every task with its five transitions', async (t) => {
  const { s, sdk, ep } = await setUp(t, false);
  const add = await sdk.registerFunction(function add(a: number, b: number) { return a + b; }, { name: 'add' });
  const batch = sdk.createBatch();
  for (let i = 0; i < 300; i++) batch.add(ep.id, add, i, 1000);
  const ids = await sdk.batchRun(batch);
  const results = await sdk.getBatchResults<number>(ids, { waitMs: 60_000 });
  assert.deepEqual(results.map((r) => r.value), Array.from({ length: 300 }, (_, i) => i + 1000));
  assert.equal(new Set(ep.executed).size, 300, 'each task ran once');
  for (const id of ids) {
    const tr = await s.store.transitions(id);
    assert.deepEqual(tr.map((x) => `${x.state}/${x.actor}`), FULL, `task ${id}`);
    for (let i = 1; i < tr.length; i++) assert.ok(tr[i].at >= tr[i - 1].at, `task ${id}: ${tr[i].state} before ${tr[i - 1].state}`);
  }
});

test('a start with no result behind it is written on its own: the task shows running while it runs', async (t) => {
  const { s, sdk, ep } = await setUp(t, true);
  const noop = await sdk.registerFunction(() => null, { name: 'noop' });
  const id = await sdk.run(ep.id, noop);
  // The endpoint holds the task (no result): its start must reach the database alone.
  await untilValue('the task shows running', async () => (await s.store.task(id))?.state, { ok: (state) => state === 'running' });
  assert.deepEqual(ep.heldTasks.map((x) => x.id), [id]);
  assert.deepEqual((await sdk.getTransitions(id)).map((x) => `${x.state}/${x.actor}`), FULL.slice(0, 4));
});

test("a result batch takes only its own tasks' starts: another task's start is still written, on its own", async (t) => {
  const { s, sdk, ep } = await setUp(t, true);
  const noop = await sdk.registerFunction(() => null, { name: 'noop' });
  const [a, b] = await sdk.batchRun((() => { const batch = sdk.createBatch(); batch.add(ep.id, noop); batch.add(ep.id, noop); return batch; })());
  await untilValue('both tasks reach the endpoint', async () => ep.heldTasks.length, { ok: (n) => n === 2 });
  // Answer a only; b's start came with a's, and must not be dropped when a's batch is written.
  ep.heldTasks.splice(ep.heldTasks.findIndex((x) => x.id === b), 1);
  await ep.answerHeld(null);
  assert.equal(await sdk.getResult(a, { waitMs: 30_000 }), null);
  await untilValue('b shows running', async () => (await s.store.task(b))?.state, { ok: (state) => state === 'running' });
  assert.deepEqual((await sdk.getTransitions(a)).map((x) => `${x.state}/${x.actor}`), FULL);
  assert.deepEqual((await sdk.getTransitions(b)).map((x) => `${x.state}/${x.actor}`), FULL.slice(0, 4));
});
