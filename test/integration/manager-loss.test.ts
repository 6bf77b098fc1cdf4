/**
 * Lost managers: tasks are retried once on another manager, then fail with ManagerLost naming the manager
 * and block; a manager whose interchange goes silent exits by itself; address probing skips dead addresses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { startEngine, jsTask, waitFor } from '../helpers/engine-fixture.js';
import { decodeOutcome } from '../../src/protocol/payload.js';
import type { ResultEnvelope } from '../../src/protocol/messages.js';

const SLOW = '(ms) => new Promise((r) => setTimeout(() => r(process.pid), ms))';

test('tasks of a manager killed with SIGKILL are retried on another manager; none is lost', async () => {
  const f = await startEngine({ heartbeatPeriodMs: 200, heartbeatThresholdMs: 1000, maxRetries: 1 });
  try {
    const victim = f.startManager(['--max-workers', '2', '--block-id', 'victim']);
    await waitFor('victim registers', () => f.interchange.registry.size === 1);
    const results = new Map<string, ResultEnvelope>();
    f.interchange.onResults = (rs) => rs.forEach((r) => results.set(r.id, r));
    const tasks = Array.from({ length: 40 }, () => jsTask(SLOW, [300], 'slow'));
    f.interchange.submitMany(tasks);
    await new Promise((r) => setTimeout(r, 400));
    victim.kill('SIGKILL');
    f.startManager(['--max-workers', '4', '--block-id', 'rescuer']);
    await waitFor('every task to end', () => results.size === tasks.length, 30000);
    const failed = [...results.values()].filter((r) => r.failed);
    assert.equal(failed.length, 0, 'tasks retried after the first loss succeed');
  } finally {
    await f.stop();
  }
});

test('after the retry bound a task fails with ManagerLost naming the manager and block', async () => {
  const f = await startEngine({ heartbeatPeriodMs: 200, heartbeatThresholdMs: 1000, maxRetries: 0 });
  try {
    const victim = f.startManager(['--max-workers', '1', '--block-id', 'doomed']);
    await waitFor('manager registers', () => f.interchange.registry.size === 1);
    const pending = f.interchange.submit(jsTask(SLOW, [60000], 'forever'));
    await new Promise((r) => setTimeout(r, 300));
    const lost = once(f.interchange, 'manager-lost');
    victim.kill('SIGKILL');
    const r = await pending;
    await lost;
    assert.equal(r.failed, true);
    const outcome = decodeOutcome(r.payload);
    assert.ok(!outcome.ok);
    assert.equal(outcome.error.type, 'ManagerLost');
    assert.match(outcome.error.message, /block doomed/);
    assert.match(outcome.error.message, /silent for/);
  } finally {
    await f.stop();
  }
});

test('a manager stopped with SIGSTOP past the threshold is declared lost; its late messages are dropped and it is told to go', async () => {
  const f = await startEngine({ heartbeatPeriodMs: 200, heartbeatThresholdMs: 800, maxRetries: 1 });
  try {
    const m = f.startManager(['--max-workers', '1', '--block-id', 'frozen']);
    await waitFor('manager registers', () => f.interchange.registry.size === 1);
    m.kill('SIGSTOP');
    await once(f.interchange, 'manager-lost');
    m.kill('SIGCONT');
    // Its next heartbeat comes from a manager already declared lost: dropped, answered with shutdown.
    const [code] = (await once(m, 'exit')) as [number | null];
    assert.notEqual(code, null);
    assert.equal(f.interchange.registry.size, 0);
    assert.equal(f.interchange.state, 'running');
  } finally {
    await f.stop();
  }
});

test('a manager exits by itself when the interchange goes silent', async () => {
  const f = await startEngine({ heartbeatPeriodMs: 200, heartbeatThresholdMs: 1000 });
  const m = f.startManager(['--max-workers', '1']);
  await waitFor('manager registers', () => f.interchange.registry.size === 1);
  const t0 = Date.now();
  await f.interchange.stop({ graceMs: 0 }); // sends shutdown: the manager leaves at once
  const [code] = (await once(m, 'exit')) as [number | null];
  assert.equal(code, 0);
  assert.ok(Date.now() - t0 < 5000);
  await f.stop();
});

test('a manager whose interchange vanished without a word exits after the threshold', async () => {
  const f = await startEngine({ heartbeatPeriodMs: 200, heartbeatThresholdMs: 1000 });
  const m = f.startManager(['--max-workers', '1']);
  await waitFor('manager registers', () => f.interchange.registry.size === 1);
  // Freeze the interchange's side by stopping its heartbeats: simulate with SIGSTOP of a child is not possible
  // for an in-process interchange, so close its socket without a shutdown message.
  (f.interchange as unknown as { router: { close(): void } }).router.close();
  const t0 = Date.now();
  const [code] = (await once(m, 'exit')) as [number | null];
  assert.equal(code, 3, 'exit code 3 means the interchange went silent');
  const waited = Date.now() - t0;
  assert.ok(waited >= 700 && waited < 6000, `exited after ${waited} ms`);
  await f.stop();
});

test('address probing skips an address that does not answer and uses the one that does', async () => {
  const f = await startEngine({ heartbeatPeriodMs: 500, heartbeatThresholdMs: 5000 });
  try {
    // 127.0.0.2 is loopback too, but nothing listens there on this port.
    f.startManager(['--max-workers', '1', '--probe-timeout', '1']);
    await waitFor('manager registers', () => f.interchange.registry.size === 1);
    const m2 = f.startManager(['--max-workers', '1', '--probe-timeout', '1', '--addresses', '127.0.0.2,127.0.0.1']);
    await waitFor('second manager registers through the second address', () => f.interchange.registry.size === 2, 10000);
    assert.equal(m2.exitCode, null);
  } finally {
    await f.stop();
  }
});
