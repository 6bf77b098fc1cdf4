/**
 * GET /metrics on the real service: parsed by an independent Prometheus parser, the figures agree with what
 * the API says (tasks by state, results, bytes, forwarder connections, long-polls, HTTP latency); open on
 * loopback, behind the scrape token on any other address.
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startService, type RunningService } from '../../src/service/api.js';
import { FuncXClient } from '../../src/sdk/client.js';
import { silentLogger } from '../../src/logger.js';
import { FakeEndpoint, removeFakeEndpointDirs } from '../helpers/fake-endpoint.js';
import { histogramCount, promValue, scrape } from '../helpers/prometheus.js';
import { until, untilValue } from '../helpers/wait.js';
import { databaseFor, dropTestDatabases } from '../helpers/store-backends.js';

const dirs: string[] = [];
const tmp = (p: string) => dirs[dirs.push(mkdtempSync(join(tmpdir(), `funcx-${p}-`))) - 1];
after(async () => {
  await dropTestDatabases();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  removeFakeEndpointDirs();
});

async function service(t: TestContext, host = '127.0.0.1', home = tmp('service')): Promise<RunningService> {
  const s = await startService({ home, database: await databaseFor(home), host, port: 0, heartbeatPeriodMs: 100, heartbeatThresholdMs: 1500, log: silentLogger });
  t.after(() => s.close());
  return s;
}

test('/metrics on loopback: tasks by state and endpoint, results and bytes, forwarders, long-polls, HTTP latency', async (t) => {
  const s = await service(t);
  const { token } = await s.store.createUser('alice');
  const sdk = new FuncXClient({ serviceUrl: s.url, token });
  const ep = await FakeEndpoint.start(s.url, token, { name: 'm' });
  t.after(() => ep.close());
  const fn = await sdk.registerFunction((x: number) => {
    if (x < 0) throw new Error('negative');
    return x * 2;
  });
  const ids = [];
  for (const x of [1, 2, 3, -1]) ids.push(await sdk.run(ep.id, fn, x));
  await sdk.getBatchResults(ids, { waitMs: 30_000 });

  // A long-poll on a task that will not finish (its endpoint holds it) shows in funcx_long_polls_open.
  const held = await FakeEndpoint.start(s.url, token, { name: 'held', hold: true });
  t.after(() => held.close());
  const waiting = await sdk.run(held.id, fn, 5);
  const poll = fetch(`${s.url}/v1/tasks/${waiting}?wait=30`, { headers: { authorization: `Bearer ${token}` } });
  const m = await untilValue<Awaited<ReturnType<typeof scrape>> | undefined>('a long-poll counted open', async () => {
    const m = await scrape(`${s.url}/metrics`);
    return promValue(m, 'funcx_long_polls_open') === 1 ? m : undefined;
  });
  assert.ok(m);
  assert.equal(promValue(m, 'funcx_tasks', { endpoint: ep.id, state: 'success' }), 3);
  assert.equal(promValue(m, 'funcx_tasks', { endpoint: ep.id, state: 'failed' }), 1);
  assert.equal(promValue(m, 'funcx_results_stored_total', { endpoint: ep.id, outcome: 'success' }), 3);
  assert.equal(promValue(m, 'funcx_results_stored_total', { endpoint: ep.id, outcome: 'failed' }), 1);
  // The bytes counted are the bytes stored: compare with the store's own results.
  const stored = [...(await s.store.tasks(ids)).values()].reduce((n, task) => n + (task.result?.length ?? 0), 0);
  assert.equal(promValue(m, 'funcx_result_bytes_total', { endpoint: ep.id }), stored);
  assert.equal(promValue(m, 'funcx_forwarder_connections', { state: 'Active' }), 2);
  const waitingState = promValue(m, 'funcx_tasks', { endpoint: held.id, state: 'running' }) ?? promValue(m, 'funcx_tasks', { endpoint: held.id, state: 'waiting-for-nodes' });
  assert.equal(waitingState, 1);
  const latency = m.get('funcx_http_request_duration_seconds');
  assert.equal(latency?.type, 'HISTOGRAM');
  assert.equal(histogramCount(m.text, 'funcx_http_request_duration_seconds', { method: 'POST', route: '/v1/tasks', status_code: '200' }), 5, 'five POST /v1/tasks observed');
  // Routes are labelled by pattern, never by URL (ids would make a label per task).
  assert.ok(histogramCount(m.text, 'funcx_http_request_duration_seconds', { method: 'POST', route: '/v1/tasks/results' }) !== undefined);
  assert.doesNotMatch(m.text, /route="[^"]*[0-9a-f]{8}-[0-9a-f]{4}/);
  await held.answerHeld(10);
  assert.equal((await poll).status, 200);
  await until('the long-poll closed', async () => promValue(await scrape(`${s.url}/metrics`), 'funcx_long_polls_open') === 0);
});

test('/metrics off loopback needs the scrape token from FUNCX_SERVICE_HOME/metrics-token', async (t) => {
  const home = tmp('service');
  const s = await service(t, '0.0.0.0', home);
  const url = `http://127.0.0.1:${s.port}/metrics`;
  const anonymous = await fetch(url);
  assert.equal(anonymous.status, 401);
  assert.match(await anonymous.text(), /scrape token/);
  // A user's API token is not the scrape token.
  const { token } = await s.store.createUser('bob');
  assert.equal((await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status, 401);
  const scrapeToken = readFileSync(join(home, 'metrics-token'), 'utf8').trim();
  const m = await scrape(url, { authorization: `Bearer ${scrapeToken}` });
  assert.ok(m.has('funcx_long_polls_open'));
  assert.ok([...m.keys()].every((name) => name.startsWith('funcx_')), 'every metric is named funcx_*');
});
