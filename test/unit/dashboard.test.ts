/**
 * The dashboard's bounded history (ring buffer, per-endpoint samples, block timeline, decisions), its
 * cookie parsing, and the profile's metrics_port / metrics_host checks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ring } from '../../src/service/dashboard/ring.js';
import { EndpointHistory } from '../../src/service/dashboard/status-history.js';
import { parseCookies, Sessions } from '../../src/service/dashboard/session.js';
import { Config } from '../../src/config/config.js';

test('Ring keeps the newest `capacity` items, oldest first, and never grows', () => {
  const r = new Ring<number>(3);
  assert.deepEqual(r.toArray(), []);
  assert.equal(r.last(), undefined);
  for (let i = 1; i <= 7; i++) r.push(i);
  assert.deepEqual(r.toArray(), [5, 6, 7]);
  assert.equal(r.size, 3);
  assert.equal(r.last(), 7);
  assert.throws(() => new Ring(0), /capacity/);
});

const block = (id: string, state: string, extra: Record<string, unknown> = {}) => ({ id, jobId: `j${id}`, state, nodes: 1, busyWorkers: 1, idleWorkers: 1, ...extra });
const decision = (at: number, kinds: Partial<Record<'submit' | 'cancel', unknown[]>>) => ({ at, reason: `r${at}`, submit: [], hold: [], release: [], cancel: [], drain: [], ...kinds });

test('EndpointHistory: samples bounded, block states as first seen, ended blocks, distinct decisions', () => {
  const h = new EndpointHistory(2);
  h.record(1000, { backlog: 5, blocks: [block('0', 'pending')], decision: decision(1, { submit: [{}] }) }, { success: 0, failed: 0 });
  h.record(2000, { backlog: 3, blocks: [block('0', 'running')], decision: decision(1, { submit: [{}] }) }, { success: 4, failed: 1 });
  const s = h.record(3000, { backlog: 0, blocks: [block('0', 'running', { phase: 'draining' })], decision: decision(2, {}) }, { success: 9, failed: 1 });
  assert.deepEqual([s.workersBusy, s.workersIdle, s.blocks, s.blocksRunning, s.success], [1, 1, 1, 1, 9]);
  assert.deepEqual(h.samples.toArray().map((x) => x.t), [2000, 3000], 'bounded to 2 samples');
  h.record(4000, { blocks: [] }, { success: 9, failed: 1 });
  const [b] = h.blockTimeline();
  assert.deepEqual(b.states, [{ state: 'pending', at: 1000 }, { state: 'running', at: 2000 }, { state: 'draining', at: 3000 }, { state: 'ended', at: 4000 }]);
  assert.equal(b.ended, true);
  assert.deepEqual(h.decisions.toArray().map((d) => d.kinds), [['submit'], ['none']], 'one entry per distinct decision');
  // An endpoint that does not answer still gets a sample (its counts), and keeps its last report.
  const quiet = h.record(5000, null, { success: 10, failed: 1 }, 'not connected');
  assert.equal(quiet.success, 10);
  assert.equal(h.reportError, 'not connected');
  assert.ok(h.report);
});

test('parseCookies takes the first value of each name; sessions expire', async () => {
  const c = parseCookies('a=1; funcx_session=abc; funcx_session=evil; b');
  assert.equal(c.get('funcx_session'), 'abc');
  assert.equal(parseCookies(undefined).size, 0);
  const sessions = new Sessions({ ttlMs: -1 });
  const s = sessions.create('u');
  assert.equal(sessions.get(s.id), undefined, 'expired at once');
  const bounded = new Sessions({ max: 2 });
  const first = bounded.create('u1');
  bounded.create('u2');
  bounded.create('u3');
  assert.equal(bounded.get(first.id), undefined, 'the oldest is dropped past max');
});

test('Config metrics_port and metrics_host: off by default, loopback by default, bad values named', () => {
  assert.equal(new Config({}).metrics, null);
  assert.deepEqual(new Config({ metrics_port: 9101 }).metrics, { host: '127.0.0.1', port: 9101 });
  assert.deepEqual(new Config({ metrics_port: 0, metrics_host: '0.0.0.0' }).metrics, { host: '0.0.0.0', port: 0 });
  assert.throws(() => new Config({ metrics_port: 70000 }), /metrics_port must be a whole number ≥ 0 and ≤ 65535 \(got 70000\)/);
  assert.throws(() => new Config({ metrics_port: '9101' as unknown as number }), /metrics_port/);
  assert.throws(() => new Config({ metrics_host: '10.0.0.1' }), /metrics_host is set without metrics_port: set metrics_port too/);
  assert.throws(() => new Config({ metrics_port: 1, metrics_host: 'a b' }), /metrics_host/);
});
