/**
 * The manager's worker pools per user (worker-pool.ts with real worker processes): a user whose tasks arrive
 * while every worker is busy with the owner's long queue still gets a worker of their own (not a shared one),
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
  // She did not wait for the owner's queue to drain: a worker was handed over once its window emptied.
  assert.ok(queues.pending(OWNER) > 0, "alice's task ran only after the owner's whole queue");
  await until("the owner's tasks to finish", () => owner.every((task) => results.has(task.id)));

  const pidOf = (id: string) => (decodeOutcome(results.get(id)!.payload) as { ok: true; value: number }).value;
  const ownerPids = new Set(owner.map((task) => pidOf(task.id)));
  assert.ok(!ownerPids.has(pidOf(mine.id)), `alice's task ran in pid ${pidOf(mine.id)}, which also ran the owner's tasks`);

  // Nothing of alice's is queued and her worker is idle: her pool is reaped.
  await until("alice's pool to be reaped", () => !pool.pools().has('alice') && pool.pools().get(OWNER) === 2);
});
