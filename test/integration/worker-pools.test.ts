/**
 * The manager's worker pools per user (worker-pool.ts with real worker processes): a user whose tasks arrive
 * while every worker is busy with the owner's long queue still gets a process of their own (not a shared one),
 * and a user's pool idle past its limit is reaped (its processes end, the owner's pool gets the places back).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerPool } from '../../src/worker/worker-pool.js';
import { UserQueues, OWNER } from '../../src/worker/user-queues.js';
import { createLogger } from '../../src/logger.js';
import { decodeOutcome } from '../../src/protocol/payload.js';
import type { ResultEnvelope } from '../../src/protocol/messages.js';
import { jsTask } from '../helpers/engine-fixture.js';
import { until } from '../helpers/wait.js';

const PID = 'async (ms) => { await new Promise((r) => setTimeout(r, ms)); return process.pid; }';

test("a user arriving behind the owner's long queue gets a worker of their own; an idle user pool is reaped", async (t) => {
  const queues = new UserQueues();
  const results = new Map<string, ResultEnvelope>();
  const pool: WorkerPool = new WorkerPool({
    workers: 2,
    log: createLogger('pool-test', 'warn'),
    onResults: (rs) => rs.forEach((r) => results.set(r.id, r)),
    onIdle: () => pool.fill(queues),
    onBroken: (reason) => assert.fail(reason),
    poolIdleMs: 300,
  });
  t.after(() => pool.stop());
  pool.requeue = (tasks) => queues.unshift(tasks);
  pool.window = 8; // as for short tasks
  await until('both workers to be ready', () => pool.pools().get(OWNER) === 2);

  // The owner keeps every worker busy with a queue longer than the workers.
  const owner = Array.from({ length: 40 }, () => jsTask(PID, [50]));
  owner.forEach((task) => queues.push(task));
  pool.fill(queues);
  const mine = jsTask(PID, [0], undefined, { u: 'alice' });
  queues.push(mine);
  pool.fill(queues);
  await until("alice's task to finish", () => results.has(mine.id));
  // She did not wait for the owner's queue to drain: an owner's process yielded its slot (the owner held two, she
  // none) once its window emptied, and a process of her own started in that slot.
  assert.ok(queues.pending(OWNER) > 0, "alice's task ran only after the owner's whole queue");
  await until("the owner's tasks to finish", () => owner.every((task) => results.has(task.id)));

  const pidOf = (id: string) => (decodeOutcome(results.get(id)!.payload) as { ok: true; value: number }).value;
  const ownerPids = new Set(owner.map((task) => pidOf(task.id)));
  assert.ok(!ownerPids.has(pidOf(mine.id)), `alice's task ran in pid ${pidOf(mine.id)}, which also ran the owner's tasks`);

  // Nothing of alice's is queued and her worker is idle: her pool is reaped.
  await until("alice's pool to be reaped", () => !pool.pools().has('alice') && pool.pools().get(OWNER) === 2);
});

test('three users on two workers take turns on warm processes: five rounds, one set of processes, none shared', async (t) => {
  const queues = new UserQueues();
  const results = new Map<string, ResultEnvelope>();
  const pool: WorkerPool = new WorkerPool({
    workers: 2,
    maxProcesses: 6,
    log: createLogger('pool-test', 'warn'),
    onResults: (rs) => rs.forEach((r) => results.set(r.id, r)),
    onIdle: () => pool.fill(queues),
    onBroken: (reason) => assert.fail(reason),
  });
  t.after(() => pool.stop());
  pool.requeue = (tasks) => queues.unshift(tasks);
  await until('both workers to be ready', () => pool.pools().get(OWNER) === 2);
  const users = [OWNER, 'alice', 'bob'];
  const pidsOf = new Map<string, Set<number>>(users.map((u) => [u, new Set<number>()]));
  for (let round = 0; round < 5; round++) {
    const tasks = users.flatMap((u) => Array.from({ length: 3 }, () => ({ u, task: jsTask(PID, [20], undefined, u === OWNER ? {} : { u }) })));
    tasks.forEach(({ task }) => queues.push(task));
    pool.fill(queues);
    await until(`round ${round} to finish`, () => tasks.every(({ task }) => results.has(task.id)));
    for (const { u, task } of tasks) pidsOf.get(u)!.add((decodeOutcome(results.get(task.id)!.payload) as { ok: true; value: number }).value);
  }
  const all = users.flatMap((u) => [...pidsOf.get(u)!]);
  assert.equal(new Set(all).size, all.length, `a pid ran tasks of two users: ${JSON.stringify([...pidsOf].map(([u, s]) => [u, [...s]]))}`);
  // Each user's turns reuse its warm processes (at most two each: tasks of a round can run two at once).
  for (const u of users) assert.ok(pidsOf.get(u)!.size <= 2, `${u || 'the owner'} ran in ${pidsOf.get(u)!.size} processes over five rounds`);
});
