/**
 * The pool policy (pool-scheduler.ts) on a fake clock: who gets a free slot, when a user yields one, which idle
 * process is evicted at the cap. The turn-taking figures the abuse run depends on (three users on two slots
 * take turns without restarting a process) are checked in worker-pool-fake.test.ts on the real WorkerPool.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PoolScheduler, defaultMaxProcesses, holdsSlot, type ProcView } from '../../src/worker/pool-scheduler.js';

interface P extends ProcView {
  name: string;
}

/** A ready process of `user`: busy with `inflight` tasks since `busySince`, else idle since `idleSince`. */
function proc(name: string, user: string, inflight: number, at = { busySince: 0, idleSince: 0 }): P {
  return { name, user, ready: true, wanted: false, inflight: { length: inflight }, yielding: false, ...at };
}

function queues(pending: Record<string, number>) {
  return {
    pending: (u: string) => pending[u] ?? 0,
    waiting: () => Object.keys(pending).filter((u) => pending[u] > 0),
  };
}

const names = (ps: P[]) => ps.map((p) => p.name);

test('a free slot goes to the waiting user holding the fewest; that user\'s idle process takes it (no new process)', () => {
  const s = new PoolScheduler({ slots: 3, maxProcesses: 6, sliceMs: 100 });
  const procs = [proc('a1', 'a', 4), proc('a2', 'a', 0), proc('b1', 'b', 0)];
  const plan = s.plan(1000, procs, queues({ a: 10, b: 10 }), 4);
  // a holds one slot, b none: b first (its warm b1), then a (its warm a2) with the last free slot.
  assert.deepEqual(plan.start.map((x) => [x.user, x.proc?.name]), [['b', 'b1'], ['a', 'a2']]);
  assert.deepEqual(plan.evict, []);
});

test('ties between users holding the same number of slots go to the one whose last turn is oldest', () => {
  const s = new PoolScheduler({ slots: 1, maxProcesses: 4, sliceMs: 100 });
  const q = queues({ x: 1, y: 1 });
  const first = s.plan(10, [proc('x1', 'x', 0), proc('y1', 'y', 0)], q, 1);
  assert.equal(first.start.length, 1);
  const winner = first.start[0].user;
  const loser = winner === 'x' ? 'y' : 'x';
  // The slot is free again: the one who waited gets it.
  const second = s.plan(20, [proc('x1', 'x', 0), proc('y1', 'y', 0)], q, 1);
  assert.deepEqual(second.start.map((x) => x.user), [loser]);
});

test('a user with no process gets a new one; at the cap the least recently used idle process goes, spares of users with nothing queued first', () => {
  const s = new PoolScheduler({ slots: 2, maxProcesses: 3, sliceMs: 100 });
  const procs = [
    proc('owner', '', 0, { busySince: 0, idleSince: 50 }), // the owner queues tasks too: evicted last
    proc('b1', 'b', 0, { busySince: 0, idleSince: 300 }),
    proc('c1', 'c', 0, { busySince: 0, idleSince: 200 }),
  ];
  const plan = s.plan(1000, procs, queues({ '': 1, d: 5 }), 1);
  // d has no process: a new one (start without proc); c1 is the LRU spare of a user with nothing queued.
  const d = plan.start.find((x) => x.user === 'd');
  assert.ok(d && d.proc === undefined);
  assert.deepEqual(names(plan.evict), ['c1']);
  // The owner gets the other free slot on its own warm process.
  assert.equal(plan.start.find((x) => x.user === '')?.proc?.name, 'owner');
});

test('nothing to evict (every other process busy): the waiting user is skipped, not given a process over the cap', () => {
  const s = new PoolScheduler({ slots: 2, maxProcesses: 2, sliceMs: 100 });
  // b's one process is a warm spare still starting (it covers one task); a's is busy: a free slot, no process to end.
  const procs = [proc('a1', 'a', 1), { ...proc('b1', 'b', 0), ready: false }];
  const plan = s.plan(0, procs, queues({ b: 2 }), 1);
  assert.deepEqual(plan.start, []);
  assert.deepEqual(plan.evict, []);
});

test('three users on two slots: the waiting one gets a turn once a holder has had its slice, by one yield only', () => {
  const s = new PoolScheduler({ slots: 2, maxProcesses: 6, sliceMs: 100 });
  const a = proc('a1', 'a', 8, { busySince: 0, idleSince: 0 });
  const b = proc('b1', 'b', 8, { busySince: 40, idleSince: 0 });
  const c = proc('c1', 'c', 0, { busySince: 0, idleSince: 0 });
  const q = queues({ a: 50, b: 50, c: 50 });
  assert.deepEqual(s.plan(90, [a, b, c], q, 8).yield, [], 'no one yields before a slice has passed');
  const plan = s.plan(110, [a, b, c], q, 8);
  assert.deepEqual(names(plan.yield), ['a1'], 'the slot held longest yields');
  assert.equal(a.yielding, true);
  // Later decisions count the promise: b does not yield too, though its slice has passed by now.
  assert.deepEqual(s.plan(200, [a, b, c], q, 8).yield, []);
  // a's window empties: its slot is free and goes to c (a, with a yield just made, waits its turn).
  a.yielding = false;
  a.inflight = { length: 0 };
  const next = s.plan(210, [a, b, c], q, 8);
  assert.deepEqual(next.start.map((x) => [x.user, x.proc?.name]), [['c', 'c1']]);
});

test('a gap of two slots or more is closed at once, without waiting for a slice', () => {
  const s = new PoolScheduler({ slots: 2, maxProcesses: 4, sliceMs: 10_000 });
  const procs = [proc('o1', '', 8, { busySince: 5, idleSince: 0 }), proc('o2', '', 8, { busySince: 1, idleSince: 0 })];
  const plan = s.plan(6, procs, queues({ '': 100, alice: 1 }), 8);
  assert.deepEqual(names(plan.yield), ['o2']);
});

test('equal holders do not pass slots round: a user holding as many as the others never takes one by a yield', () => {
  const s = new PoolScheduler({ slots: 2, maxProcesses: 4, sliceMs: 100 });
  const procs = [proc('a1', 'a', 8), proc('b1', 'b', 8)];
  assert.deepEqual(s.plan(10_000, procs, queues({ a: 100, b: 100 }), 8).yield, []);
});

test('a process starting for its user holds a slot and covers a window of that user\'s tasks', () => {
  const s = new PoolScheduler({ slots: 2, maxProcesses: 4, sliceMs: 100 });
  const starting: P = { ...proc('a1', 'a', 0), ready: false, wanted: true };
  assert.equal(holdsSlot(starting), true);
  assert.equal(holdsSlot({ ...starting, wanted: false }), false, 'a warm spare starting holds none');
  assert.deepEqual(s.plan(0, [starting], queues({ a: 8 }), 8).start, [], 'a window of 8 covers 8 queued tasks');
  assert.deepEqual(s.plan(0, [starting], queues({ a: 9 }), 8).start.map((x) => x.user), ['a'], 'a ninth asks for another slot');
});

test('options: slots at least 1, the process cap at least the slots; the default cap', () => {
  assert.throws(() => new PoolScheduler({ slots: 0, maxProcesses: 1, sliceMs: 1 }), /slots/);
  assert.throws(() => new PoolScheduler({ slots: 4, maxProcesses: 3, sliceMs: 1 }), /maxProcesses \(3\) must be at least slots \(4\)/);
  assert.equal(defaultMaxProcesses(2, 2, 4), 6);
  assert.equal(defaultMaxProcesses(16, 2, 4), 32);
});
