/**
 * PostgreSQL itself (a private server) stops and starts again under a running service: requests during the outage get 503
 * with Retry-After, the service reconnects by itself (pool and LISTEN connection), and no task or result
 * is lost: results sent during the outage are not acknowledged, so the endpoint sends them again.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startService } from '../../src/service/api.js';
import { FuncXClient } from '../../src/sdk/client.js';
import { silentLogger } from '../../src/logger.js';
import { FakeEndpoint, removeFakeEndpointDirs } from '../helpers/fake-endpoint.js';
import { postgresBackend, privatePostgres } from '../helpers/store-backends.js';
import { until } from '../helpers/wait.js';

const home = mkdtempSync(join(tmpdir(), 'funcx-pg-outage-'));
after(() => {
  rmSync(home, { recursive: true, force: true });
  removeFakeEndpointDirs();
});

test('PostgreSQL restarts mid-run: 503 with Retry-After meanwhile, the service reconnects, 0 tasks lost', { skip: postgresBackend.skip }, async (t) => {
  // A server of its own: stopping it disturbs no other test.
  const pg = await privatePostgres();
  t.after(() => pg.destroy());
  const s = await startService({ home, database: pg.url, port: 0, heartbeatPeriodMs: 100, heartbeatThresholdMs: 1500, log: silentLogger });
  t.after(() => s.close());
  const { token } = await s.store.createUser('alice');
  const sdk = new FuncXClient({ serviceUrl: s.url, token });
  const ep = await FakeEndpoint.start(s.url, token, { name: 'ep', hold: true });
  t.after(() => ep.close());
  const fn = await sdk.registerFunction((x: number) => x, { name: 'id' });
  const batch = sdk.createBatch();
  for (let i = 0; i < 200; i++) batch.add(ep.id, fn, i);
  const first = await sdk.batchRun(batch);
  await until('the endpoint to hold the first 100 tasks (its credit)', () => ep.heldTasks.length === 100);

  await pg.stop();
  // Answered while the database is down: results go out unacknowledged, requests are refused with 503.
  await ep.answerHeld('during');
  ep.heldTasks.length = 0;
  const r = await fetch(`${s.url}/v1/tasks/${first[0]}`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 503);
  assert.equal(r.headers.get('retry-after'), '2');
  assert.equal(((await r.json()) as { code: string }).code, 'STORE_UNAVAILABLE');
  assert.equal((await fetch(`${s.url}/v1/health`)).status, 200, 'the process itself is fine');

  await pg.start();
  await until('the service to answer again', async () => (await fetch(`${s.url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } })).status === 200);
  // The other 100 are delivered once the credit comes back with the re-sent results; answer them too.
  await until('the other 100 tasks to reach the endpoint', () => ep.heldTasks.length === 100);
  await ep.answerHeld('after');
  const results = await sdk.getBatchResults(first, { waitMs: 120_000 });
  assert.equal(results.filter((x) => x.pending || !x.ok).length, 0, 'no task lost or failed');
  assert.equal(results.filter((x) => x.value === 'during').length, 100, 'the results sent during the outage were stored once it was over');
  assert.equal(results.filter((x) => x.value === 'after').length, 100);
});
