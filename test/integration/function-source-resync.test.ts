/**
 * A task naming a function source the endpoint does not hold is never lost nor failed (function-sources.ts):
 * the endpoint drops it and says hello with `resync`; the forwarder forgets what it sent, requeues every task
 * without a result and sends the source again. The divergence is made by clearing the endpoint's cache (what
 * a tasks message lost on a live connection would leave), with the real service forwarder and ForwarderClient.
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

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  removeFakeEndpointDirs();
});

test('tasks naming a source the endpoint lost are sent again with the source, and all succeed once', async (t) => {
  const home = dirs[dirs.push(mkdtempSync(join(tmpdir(), 'funcx-resync-'))) - 1];
  const s = await startService({ home, port: 0, heartbeatPeriodMs: 100, heartbeatThresholdMs: 3000, log: silentLogger });
  t.after(() => s.close());
  const { token } = await s.store.createUser('alice');
  const ep = await FakeEndpoint.start(s.url, token, { window: 1000 });
  t.after(() => ep.close());
  const sdk = new FuncXClient({ serviceUrl: s.url, token });
  const fn = await sdk.registerFunction(`(x) => x + 1 /* ${'q'.repeat(100_000)} */`, { name: 'big' });
  const run = async (n: number, base: number) => {
    const ids = await sdk.batchRun(Array.from({ length: n }, (_, i) => base + i).reduce((b, i) => b.add(ep.id, fn, i), sdk.createBatch()));
    const results = await sdk.getBatchResults<number>(ids, { waitMs: 60_000 });
    assert.deepEqual(results.map((r) => r.value), Array.from({ length: n }, (_, i) => base + i + 1));
    return ids;
  };
  await run(50, 0);
  const forwarder = s.forwarders.get(ep.id)!;
  assert.equal(forwarder.sentSources.sentCount, 1);
  assert.equal(ep.client.resyncCount, 0);

  ep.client.sources.clear();
  const ids = await run(50, 1000);
  assert.ok(ep.client.resyncCount >= 1, 'the endpoint asked for the source again');
  assert.equal(forwarder.sentSources.sentCount, 2, 'the forwarder sent the source once more, not once per task');
  for (const id of ids) assert.equal(ep.executed.filter((x) => x === id).length, 1, `task ${id} ran once`);
  for (const id of ids) assert.equal((await s.store.task(id))?.state, 'success');
});
