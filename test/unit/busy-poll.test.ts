/**
 * The manager's spinner (engine.busy_poll_us, src/worker/busy-poll.ts): it spins only after a kick, stops at
 * the end of its window and then costs nothing, runs at nice 19, and is off at 0. Counted by its own events
 * (windows started and ended, spin turns) and its thread's CPU time, never by waiting a fixed time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { BusyPoll } from '../../src/worker/busy-poll.js';
import { until, untilEvent } from '../helpers/wait.js';

const linux = existsSync('/proc/thread-self');

/** ns the thread has run (Linux schedstat, first field). */
function threadCpuNs(tid: number): number {
  return Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
}

/** The thread's nice value (Linux stat, field 19). */
function threadNice(tid: number): number {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** Let the process handle other events for a while: a child node process runs to its exit. */
async function otherWork(): Promise<void> {
  const child = spawn(process.execPath, ['-e', 'for (let i = 0; i < 3e6; i++);'], { stdio: 'ignore' });
  await untilEvent(child, 'exit');
}

test('a window of 0 is off: no thread, and a kick does nothing', async () => {
  const spin = new BusyPoll(0);
  await spin.ready;
  assert.equal(spin.enabled, false);
  spin.kick();
  spin.kick();
  assert.equal(spin.windows, 0);
  assert.equal(spin.turns, 0);
  spin.stop();
  await spin.exited;
});

test('after a kick it spins, the window ends, and then it stays blocked: no turns and no CPU time while the process does other work', async () => {
  const spin = new BusyPoll(2000);
  try {
    await spin.ready;
    assert.equal(spin.windows, 0, 'no window before the first kick');
    assert.equal(spin.turns, 0);
    spin.kick();
    await until('the window to start and end', () => spin.windowsEnded === 1);
    assert.equal(spin.windows, 1);
    assert.ok(spin.turns > 0, 'it spun during the window');
    const turns = spin.turns;
    const cpu = linux && spin.tid !== null ? threadCpuNs(spin.tid) : 0;
    await otherWork();
    await otherWork();
    assert.equal(spin.turns, turns, 'no turn after the window ended');
    assert.equal(spin.windows, 1, 'no window without a kick');
    if (linux && spin.tid !== null) {
      assert.ok(threadCpuNs(spin.tid) - cpu < 1e6, `the blocked spinner used ${threadCpuNs(spin.tid) - cpu} ns of CPU`);
      assert.equal(threadNice(spin.tid), 19, 'it runs at the lowest priority');
    }
    // The next kick starts one more window, which ends too.
    spin.kick();
    await until('the second window to end', () => spin.windowsEnded === 2);
    assert.equal(spin.windows, 2);
  } finally {
    spin.stop();
    await spin.exited;
  }
});

test('kicks within a window extend it rather than starting another', async () => {
  // A long window, so the kicks below all land inside it however slow the machine is: at 50 ms, this
  // thread descheduled for longer in the middle of its 100 kicks (a loaded 2-CPU machine) let the window end
  // and a second one start (seen once in the unit suite).
  const spin = new BusyPoll(1_000_000);
  try {
    await spin.ready;
    for (let i = 0; i < 100; i++) spin.kick();
    await until('the window to end', () => spin.windowsEnded === 1);
    assert.equal(spin.windows, 1);
  } finally {
    spin.stop();
    await spin.exited;
  }
});

test('stop ends the thread; kicks after it do nothing', async () => {
  const spin = new BusyPoll(1000);
  await spin.ready;
  spin.kick();
  spin.stop();
  await spin.exited;
  const windows = spin.windows;
  spin.kick();
  spin.stop(); // again: safe
  assert.equal(spin.windows, windows);
});
