/**
 * Several service replicas on one PostgreSQL: replica A runs in this process (so the test can see its
 * forwarders and long-polls), replica B is a real `funcx-service start --foreground` child process. Tasks
 * submitted on one reach the endpoint connected to the other through the database and LISTEN/NOTIFY, and
 * a long-poll on A is woken by a result B stored.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startService, type RunningService } from '../../src/service/api.js';
import { FuncXClient } from '../../src/sdk/client.js';
import { registerEndpoint } from '../../src/endpoint/service-link/registration.js';
import { silentLogger } from '../../src/logger.js';
import { FakeEndpoint, removeFakeEndpointDirs } from '../helpers/fake-endpoint.js';
import { postgresBackend, type TestDatabase } from '../helpers/store-backends.js';
import { until, untilValue } from '../helpers/wait.js';

const CLI = fileURLToPath(new URL('../../src/cli/service.js', import.meta.url));
const dirs: string[] = [];
const tmp = (p: string) => dirs[dirs.push(mkdtempSync(join(tmpdir(), `funcx-${p}-`))) - 1];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  removeFakeEndpointDirs();
});

/** A replica as its own process; resolves with its URL once it listens. */
async function replicaProcess(database: string, forwarderKey: string): Promise<{ url: string; child: ChildProcess }> {
  const args = ['start', '--foreground', '--port', '0', '--heartbeat-period-ms', '100', '--heartbeat-threshold-ms', '1500', '--forwarder-key', forwarderKey];
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, FUNCX_SERVICE_HOME: tmp('replica-b'), FUNCX_DATABASE_URL: database },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const url = await untilValue('replica B to listen', () => {
    if (child.exitCode !== null) throw new Error(`replica B exited (${child.exitCode}):\n${out}`);
    return /listening on (http:\/\/\S+)/.exec(out)?.[1] as string;
  });
  return { url, child };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

test('a task submitted on replica A runs on an endpoint connected to replica B; its result wakes a long-poll on A', { skip: postgresBackend.skip }, async (t) => {
  const db: TestDatabase = await postgresBackend.create();
  t.after(() => db.drop());
  const homeA = tmp('replica-a');
  const a: RunningService = await startService({
    home: homeA, database: db.location, port: 0, heartbeatPeriodMs: 100, heartbeatThresholdMs: 1500, log: silentLogger,
  });
  t.after(() => a.close());
  // Both replicas present A's forwarder key, as a facility gives every replica the same --forwarder-key file.
  const b = await replicaProcess(db.location, join(homeA, 'keys', 'forwarder.json'));
  t.after(() => stop(b.child));

  const { token } = await a.store.createUser('alice');
  const onA = new FuncXClient({ serviceUrl: a.url, token });
  const onB = new FuncXClient({ serviceUrl: b.url, token });
  assert.equal((await onB.whoami()).name, 'alice', 'a token made on A works on B');

  // The endpoint first registers with A, then with B (as after a failover): A lets go of its forwarder.
  const first = await FakeEndpoint.start(a.url, token, { name: 'ep' });
  const endpointId = first.id;
  await until('A to hold the forwarder', () => a.forwarders.get(endpointId) !== undefined);
  await first.close();
  const ep = await FakeEndpoint.start(b.url, token, { name: 'ep', endpointId, keys: first.keys, hold: true });
  t.after(() => ep.close());
  // An endpoint pins the forwarder key it first learned (forwarder-pin.ts): behind one load balancer address,
  // every replica must present the same key, or the endpoint refuses the replica it fails over to.
  assert.equal(ep.forwarder.publicKey, first.forwarder.publicKey, 'replicas A and B present one forwarder key');
  await until('A to close its forwarder once B serves the endpoint', () => a.forwarders.get(endpointId) === undefined);
  assert.equal((await a.store.endpoint(endpointId))?.replica !== a.replicaId, true);
  await until('B to see the endpoint Active, as A reports it', async () => (await onA.getEndpoint(endpointId)).state === 'Active');

  // Submitted on A: reaches the endpoint through B's forwarder (A has none for it).
  const fn = await onA.registerFunction((x: number) => x * 2, { name: 'double' });
  const taskId = await onA.run(endpointId, fn, 21);
  await until('the task to reach the endpoint connected to B', () => ep.heldTasks.some((x) => x.id === taskId));

  // A long-poll on A, registered before the result exists; B stores the result and A's poll wakes.
  const polled = onA.getResult<number>(taskId, { waitMs: 60_000 });
  await until('the long-poll to wait on A', () => a.waiters.size === 1);
  assert.match((await a.store.task(taskId))?.state ?? '', /^(waiting-for-nodes|running)$/, 'no result yet while the poll waits');
  await ep.answerHeld(42);
  assert.equal(await polled, 42);
  assert.equal(a.waiters.size, 0);
  assert.deepEqual((await a.store.transitions(taskId)).map((x) => x.state), ['received', 'waiting-for-endpoint', 'waiting-for-nodes', 'running', 'success']);

  // And the other way: a batch submitted on B, all results read on A.
  ep.heldTasks.length = 0;
  const batch = onB.createBatch();
  for (let i = 0; i < 50; i++) batch.add(endpointId, fn, i);
  const ids = await onB.batchRun(batch);
  await until('all 50 to reach the endpoint', () => ep.heldTasks.length === 50);
  await ep.answerHeld(7);
  for (const id of ids) assert.equal(await onA.getResult(id, { waitMs: 60_000 }), 7);

  // A token rotated on B while a call waits on A: A hears of it (the rotating statement tells the bus) before
  // the result that wakes the call, so the call checks its token again and answers 401, not the result.
  ep.heldTasks.length = 0;
  // The 401 may come as soon as A hears of the rotation, before the result: the rejection is awaited from
  // the start, or it would be an unhandled rejection while the test still rotates and answers.
  const call = assert.rejects(onA.call(endpointId, fn, [1], { waitMs: 60_000 }), (err: unknown) => (err as { status?: number }).status === 401, 'the call of the token rotated on B');
  await until('the call to wait on A', () => a.waiters.size === 1);
  await until('the endpoint to hold the called task', () => ep.heldTasks.length === 1);
  const fresh = await onB.rotateToken();
  await ep.answerHeld('secret');
  await call;
  assert.equal(await new FuncXClient({ serviceUrl: a.url, token: fresh }).getResult(ep.heldTasks[0].id, { waitMs: 60_000 }), 'secret');
});

test('kill -9 the replica an endpoint is connected to with 1,000 tasks in flight: it moves to the other replica and none is lost', { skip: postgresBackend.skip }, async (t) => {
  const db: TestDatabase = await postgresBackend.create();
  t.after(() => db.drop());
  const homeA = tmp('replica-a');
  const a: RunningService = await startService({
    home: homeA, database: db.location, port: 0, heartbeatPeriodMs: 100, heartbeatThresholdMs: 1500, log: silentLogger,
  });
  t.after(() => a.close());
  // Both replicas present A's forwarder key, as a facility gives every replica the same --forwarder-key file.
  const b = await replicaProcess(db.location, join(homeA, 'keys', 'forwarder.json'));
  t.after(() => stop(b.child));
  const { token } = await a.store.createUser('alice');
  const onA = new FuncXClient({ serviceUrl: a.url, token });

  // The endpoint is given both replicas' addresses (as a facility would give it the load balancer's):
  // it registers again with the first that answers once its forwarder is gone.
  let endpointId = '';
  let keys: FakeEndpoint['keys'] | undefined;
  const reregister = async () => {
    let last: unknown;
    for (const url of [b.url, a.url]) {
      try {
        return (await registerEndpoint(url, token, { name: 'ep', endpointId, publicKey: keys!.publicKey })).forwarder;
      } catch (err) {
        last = err;
      }
    }
    throw last;
  };
  const ep = await FakeEndpoint.start(b.url, token, { name: 'ep', window: 200, reregister });
  t.after(() => ep.close());
  endpointId = ep.id;
  keys = ep.keys;
  ep.delayMs = 2;

  const fn = await onA.registerFunction((x: number) => x + 1, { name: 'inc' });
  const batch = onA.createBatch();
  for (let i = 0; i < 1000; i++) batch.add(endpointId, fn, i);
  const ids = await onA.batchRun(batch);
  await until('the endpoint to be running tasks through replica B', () => ep.executed.length >= 100);
  b.child.kill('SIGKILL');
  await new Promise((r) => b.child.once('exit', r));
  const doneAtKill = (await onA.getBatchResults(ids, { waitMs: 0 })).filter((r) => !r.pending).length;
  assert.ok(doneAtKill < 1000, `tasks were still in flight when B died (${doneAtKill} done)`);

  await until('A to serve the endpoint', () => a.forwarders.get(endpointId) !== undefined);
  const results = await onA.getBatchResults<number>(ids, { waitMs: 120_000 });
  const lost = results.filter((r) => r.pending || !r.ok);
  assert.equal(lost.length, 0, `lost or failed: ${lost.slice(0, 3).map((r) => `${r.taskId} ${r.state}`).join(', ')}`);
  assert.deepEqual(results.map((r) => r.value), ids.map((_, i) => i + 1));
  assert.equal(new Set(ep.executed).size, 1000, 'every task ran (some twice: at least once across a failover)');
});
