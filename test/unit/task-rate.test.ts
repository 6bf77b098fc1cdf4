import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TaskRateLimiter } from '../../src/service/task-rate.js';

test('a user gets a burst, then the rate; a refusal takes nothing and says when the batch fits', () => {
  const r = new TaskRateLimiter(100, 1000);
  assert.equal(r.take('alice', 1000, 0).ok, true, 'a whole burst at once');
  const refused = r.take('alice', 50, 0);
  assert.deepEqual(refused, { ok: false, available: 0, retryAfterS: 1 });
  assert.equal(r.take('alice', 50, 500).ok, true, '0.5 s at 100/s refills 50');
  assert.equal(r.take('alice', 1, 500).ok, false);
  assert.deepEqual(r.take('alice', 1000, 1500), { ok: false, available: 100, retryAfterS: 9 }, 'all or nothing; 900 more need 9 s');
  assert.equal(r.take('alice', 1000, 10_500).ok, true, 'never more than the burst is kept, and it refills to it');
});

test('users have buckets of their own; a refund gives back what a refused submission took', () => {
  const r = new TaskRateLimiter(10, 100);
  assert.equal(r.take('mallory', 100, 0).ok, true);
  assert.equal(r.take('mallory', 1, 0).ok, false);
  assert.equal(r.take('alice', 100, 0).ok, true, "mallory's use is not alice's");
  r.refund('alice', 60);
  assert.equal(r.take('alice', 60, 0).ok, true);
  r.refund('alice', 10_000);
  assert.equal(r.take('alice', 101, 0).ok, false, 'a refund never fills past the burst');
});
