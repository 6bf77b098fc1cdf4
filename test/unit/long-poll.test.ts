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
