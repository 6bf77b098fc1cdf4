import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_INTERVAL_MS, SLOW_FACTOR, StatusPacer } from '../../providers/status-pacer.js';

/** A stand-in scheduler on a fake clock: each status command takes `answerMs` of fake time and is counted. */
function scheduler(answerMs = 100) {
  const clock = { t: 0, now() { return this.t; } };
  const calls: number[] = [];
  const poll = async (): Promise<string> => {
    calls.push(clock.t);
    clock.t += s.answerMs;
    return 'R';
  };
  const s = { clock, calls, poll, answerMs };
  return s;
}

test('a strategy asking every second gets at most max_status_rate commands a minute, evenly spread', async () => {
  const s = scheduler();
  const pacer = new StatusPacer({ maxPerMinute: 12, clock: s.clock });
  let fresh = 0;
  for (let t = 0; t < 10 * 60_000; t += 1000) {
    s.clock.t = Math.max(s.clock.t, t);
    if ((await pacer.run(s.poll)).fresh) fresh++;
  }
  assert.equal(fresh, s.calls.length);
  for (let i = 0; i < s.calls.length; i++) {
    const inMinute = s.calls.filter((c) => c >= s.calls[i]! && c < s.calls[i]! + 60_000).length;
    assert.ok(inMinute <= 12, `${inMinute} commands in the minute from ${s.calls[i]} ms`);
  }
  assert.ok(s.calls.length >= 10 * 12 - 2, `the allowance is used (${s.calls.length} in 10 minutes)`);
  assert.equal(pacer.polls, s.calls.length);
  assert.equal(pacer.spared, 600 - s.calls.length);
});

test('a burst of nudges cannot spend the allowance at once: half the even spacing between two commands', async () => {
  const s = scheduler(10);
  const pacer = new StatusPacer({ maxPerMinute: 12, clock: s.clock });
  for (let i = 0; i < 24; i++) {
    await pacer.run(s.poll);
    s.clock.t += 250;
  }
  // 24 asks over ~6 s: one at 0, one 2.5 s later, one at 5 s.
  assert.deepEqual(s.calls.map((c) => Math.floor(c / 2500)), [0, 1, 2]);
});

test('a scheduler that answers slowly gets a longer interval', async () => {
  const s = scheduler(3000);
  const pacer = new StatusPacer({ maxPerMinute: 12, clock: s.clock });
  for (let t = 0; t < 5 * 60_000; t += 1000) {
    s.clock.t = Math.max(s.clock.t, t);
    await pacer.run(s.poll);
  }
  assert.equal(pacer.answerMs(), 3000);
  assert.equal(pacer.intervalMs(), SLOW_FACTOR * 3000);
  const gaps = s.calls.slice(1).map((c, i) => c - s.calls[i]!);
  assert.ok(gaps.every((g) => g >= 30_000), `gaps ${gaps.join(', ')}`);
  assert.ok(s.calls.length <= 11, `${s.calls.length} commands in 5 minutes`);
  // A scheduler that hangs for minutes is still asked, every MAX_INTERVAL_MS.
  s.answerMs = 3_600_000;
  for (let i = 0; i < 10; i++) {
    s.clock.t += MAX_INTERVAL_MS;
    await pacer.run(s.poll);
  }
  assert.equal(pacer.intervalMs(), MAX_INTERVAL_MS);
});

test('callers while a command runs share it; a failing command frees the slot', async () => {
  const clock = { t: 0, now() { return this.t; } };
  const pacer = new StatusPacer({ maxPerMinute: 12, clock });
  let release!: (v: string) => void;
  let commands = 0;
  const first = pacer.run(() => { commands++; return new Promise<string>((r) => { release = r; }); });
  const second = pacer.run(async () => { commands++; return 'never'; });
  release('R');
  assert.deepEqual(await first, { fresh: true, value: 'R' });
  assert.deepEqual(await second, { fresh: false });
  assert.equal(commands, 1);
  clock.t += 5000;
  await assert.rejects(pacer.run(async () => { throw new Error('squeue: timeout'); }), /timeout/);
  clock.t += 5000;
  assert.equal((await pacer.run(async () => 'again')).fresh, true);
  assert.throws(() => new StatusPacer({ maxPerMinute: 0 }), /max_status_rate must be > 0/);
});
