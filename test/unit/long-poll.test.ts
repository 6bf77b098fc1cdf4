/**
 * ResultWaiters (src/service/routes/long-poll.ts): a wake carries what was stored, so the woken request needs
 * no second read; ids found finished by the read after registering are settled, not waited for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResultWaiters, type StoredOutcome } from '../../src/service/routes/long-poll.js';

const stored = (payload: number[], failed = false): StoredOutcome => ({ failed, payload: Uint8Array.from(payload), at: 1234 });

test('a wake tells the outcome stored; the bytes only to a waiter that keeps results', async () => {
  const waiters = new ResultWaiters();
  const one = waiters.wait(['a'], 'all', 60_000, { keepResults: true });
  const many = waiters.wait(['a', 'b'], 'all', 60_000);
  const outcomes = new Map([['a', stored([1, 2, 3])], ['b', stored([9], true)]]);
  waiters.notify(['a'], (id) => outcomes.get(id));
  await one.done;
  assert.deepEqual(one.outcomes.get('a'), { failed: false, resultBytes: 3, at: 1234, result: Buffer.from([1, 2, 3]) });
  assert.deepEqual(many.outcomes.get('a'), { failed: false, resultBytes: 3, at: 1234 });
  assert.equal(waiters.size, 1, 'the batch waiter still waits for b');
  waiters.notify(['b'], (id) => outcomes.get(id));
  await many.done;
  assert.deepEqual(many.outcomes.get('b'), { failed: true, resultBytes: 1, at: 1234 });
  assert.equal(waiters.size, 0);
});

test('a wake without the outcome (another replica, a re-read) leaves the id to be read again', async () => {
  const waiters = new ResultWaiters();
  const w = waiters.wait(['a', 'b'], 'all', 60_000);
  waiters.notify(['a']);
  waiters.notify(['b'], () => stored([7]));
  await w.done;
  assert.equal(w.outcomes.has('a'), false);
  assert.equal(w.outcomes.get('b')?.resultBytes, 1);
});

test('settle: ids the read found finished are not waited for; a later wake for them changes nothing', async () => {
  const waiters = new ResultWaiters();
  const w = waiters.wait(['a', 'b'], 'all', 60_000);
  w.settle(['a']);
  assert.equal(waiters.size, 1);
  waiters.notify(['a'], () => stored([1]));
  assert.equal(w.outcomes.has('a'), false, 'a finished before the wait: its outcome comes from the read');
  assert.equal(waiters.size, 1);
  w.settle(['b']);
  await w.done;
  assert.equal(waiters.size, 0);
});

test('keepResultBytes: results are kept while they fit in the budget, the rest only told', async () => {
  const waiters = new ResultWaiters();
  const w = waiters.wait(['a', 'b', 'c'], 'all', 60_000, { keepResultBytes: 4 });
  waiters.notify(['a', 'b', 'c'], (id) => (id === 'b' ? stored([1, 2, 3]) : stored([9, 9])));
  await w.done;
  assert.deepEqual(w.outcomes.get('a')?.result, Buffer.from([9, 9]));
  assert.equal(w.outcomes.get('b')?.result, undefined, 'over the budget: read again by the request');
  assert.equal(w.outcomes.get('b')?.resultBytes, 3);
  assert.deepEqual(w.outcomes.get('c')?.result, Buffer.from([9, 9]));
});

test('several waiters on one task: each is woken; one ending leaves the others registered', async () => {
  const waiters = new ResultWaiters();
  const first = waiters.wait(['a'], 'all', 60_000);
  const second = waiters.wait(['a', 'b'], 'all', 60_000);
  const third = waiters.wait(['a'], 'any', 60_000);
  first.cancel();
  assert.deepEqual(waiters.pendingIds().sort(), ['a', 'b']);
  waiters.notify(['a'], () => stored([1]));
  await third.done;
  assert.equal(second.outcomes.get('a')?.resultBytes, 1);
  assert.equal(waiters.size, 1, 'the second still waits for b');
  second.cancel();
  assert.deepEqual(waiters.pendingIds(), []);
  const again = waiters.wait(['a'], 'all', 60_000);
  waiters.notify(['a'], () => stored([2]));
  await again.done;
  assert.equal(waiters.size, 0);
});

test('a task waited for by two, then by one (the other cancelled): the one left is woken, nothing stays registered', async () => {
  const waiters = new ResultWaiters();
  const first = waiters.wait(['a', 'a'], 'all', 60_000);
  const second = waiters.wait(['a'], 'all', 60_000);
  second.cancel();
  assert.deepEqual(waiters.pendingIds(), ['a']);
  waiters.notify(['a'], () => stored([3]));
  await first.done;
  assert.equal(first.outcomes.get('a')?.resultBytes, 1);
  assert.deepEqual(waiters.pendingIds(), []);
  assert.equal(waiters.size, 0);
});
