/**
 * engine.busy_poll_us with a real manager (src/worker/busy-poll.ts): its spinner thread runs at nice 19,
 * spins while round trips pass, and once they stop it blocks: its CPU time stops growing while this process
 * does other work. Linux only (the thread is found and measured through /proc).
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { startEngine, jsTask, type EngineFixture } from '../helpers/engine-fixture.js';
import { until, untilEvent, untilValue } from '../helpers/wait.js';

let f: EngineFixture;
let manager: ChildProcess;

before(async () => {
  assert.ok(existsSync('/proc/self/task'), 'this test reads threads through /proc (Linux)');
  // Heartbeats far apart: a heartbeat is a message, and each message opens a window.
  f = await startEngine({ heartbeatPeriodMs: 60_000, heartbeatThresholdMs: 120_000 });
  manager = f.startManager(['--max-workers', '1', '--busy-poll-us', '300']);
  await until('a manager to register', () => f.interchange.registry.size === 1);
});
after(async () => {
  await f.stop();
});

interface ThreadStat {
  tid: string;
  state: string;
  nice: number;
}

function threads(pid: number): ThreadStat[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return [{ tid, state: fields[0], nice: Number(fields[16]) }];
    } catch {
      return []; // the thread ended between the listing and the read
    }
  });
}

function cpuNs(pid: number, tid: string): number {
  return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
}

/** Let time pass through events: a child node process runs to its exit. */
async function otherWork(): Promise<void> {
  const child = spawn(process.execPath, ['-e', 'for (let i = 0; i < 3e6; i++);'], { stdio: 'ignore' });
  await untilEvent(child, 'exit');
}

test('the manager spins at nice 19 while round trips pass, then blocks: its spinner uses no CPU while idle', async () => {
  const pid = manager.pid!;
  const spinner = (await untilValue('the manager\'s nice-19 spinner thread', () => threads(pid).find((t) => t.nice === 19)))!;
  const before = cpuNs(pid, spinner.tid);
  for (let i = 0; i < 200; i++) {
    const r = await f.interchange.submit(jsTask('(x) => x', [i], 'echo'));
    assert.equal(r.failed, false);
  }
  const during = cpuNs(pid, spinner.tid) - before;
  assert.ok(during > 0, 'the spinner ran during the round trips');
  await until('the spinner to block once the round trips stopped', () => threads(pid).find((t) => t.tid === spinner.tid)?.state === 'S');
  const idle = cpuNs(pid, spinner.tid);
  await otherWork();
  await otherWork();
  const grew = cpuNs(pid, spinner.tid) - idle;
  assert.ok(grew < 1e6, `the idle spinner used ${grew} ns of CPU (it used ${during} ns during 200 round trips)`);
  assert.equal(threads(pid).find((t) => t.tid === spinner.tid)?.state, 'S', 'still blocked');
});

test('a manager with busy_poll_us 0 starts no spinner thread', async () => {
  const other = f.startManager(['--max-workers', '1', '--busy-poll-us', '0']);
  await until('the second manager to register', () => f.interchange.registry.size === 2);
  assert.deepEqual(threads(other.pid!).filter((t) => t.nice === 19), []);
});
