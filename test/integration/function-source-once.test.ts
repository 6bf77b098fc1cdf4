/**
 * A function's source goes to an endpoint once, not with every task (issue 11): the service and a real
 * endpoint daemon (`funcx-endpoint start`, a local block); 200 tasks naming one 1 MiB function all succeed
 * with the right values, and the forwarder sent that source once (its character count, on /metrics and on
 * the forwarder, is the source's length, not 200 times it).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startService, type RunningService } from '../../src/service/api.js';
import { FuncXClient } from '../../src/sdk/client.js';
import { silentLogger } from '../../src/logger.js';
import { promValue, scrape } from '../helpers/prometheus.js';
import { untilValue } from '../helpers/wait.js';

const CLI = fileURLToPath(new URL('../../src/cli/endpoint.js', import.meta.url));
let tmp = '';
let home = '';
let service: RunningService;
let token = '';

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('FUNCX_')) env[k] = v;
  Object.assign(env, { FUNCX_HOME: home, FUNCX_SERVICE_URL: service.url, FUNCX_TOKEN: token });
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject).on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const PROFILE = `import { Config, LocalProvider } from 'funcx-endpoint';
export default new Config({
  engine: { address: '127.0.0.1', max_workers_per_node: 2, heartbeat_period: 1, heartbeat_threshold: 5 },
  provider: new LocalProvider({ init_blocks: 1, min_blocks: 1, max_blocks: 1 }),
  strategy: { period: 1 },
});
`;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'funcx-source-once-'));
  home = join(tmp, 'home');
  service = await startService({ home: join(tmp, 'service'), port: 0, log: silentLogger });
  token = (await service.store.createUser('alice')).token;
  // The profile is written before the one start (a start, then a restart on it, cost a daemon start more).
  const configured = await cli(['configure']);
  assert.equal(configured.code, 0, configured.stderr);
  writeFileSync(join(home, 'default', 'config.ts'), PROFILE);
  const started = await cli(['start']);
  assert.equal(started.code, 0, started.stderr);
});

after(async () => {
  await cli(['stop']);
  await service.close();
  rmSync(tmp, { recursive: true, force: true });
});

test('200 tasks naming one 1 MiB function: all succeed, and its source crossed to the endpoint once', async () => {
  const sdk = new FuncXClient({ serviceUrl: service.url, token });
  const [endpoint] = await sdk.listEndpoints();
  const source = `(x) => x * 2 /* ${'p'.repeat(1024 * 1024 - 32)} */`; // the service's largest: 1 MiB characters
  const fn = await sdk.registerFunction(source, { name: 'big' });
  const batch = sdk.createBatch();
  for (let i = 0; i < 200; i++) batch.add(endpoint.endpointId, fn, i);
  const ids = await sdk.batchRun(batch);
  const results = await sdk.getBatchResults<number>(ids, { waitMs: 120_000 });
  assert.deepEqual(results.map((r) => r.value), Array.from({ length: 200 }, (_, i) => i * 2));

  const forwarder = service.forwarders.get(endpoint.endpointId);
  assert.ok(forwarder, 'the endpoint has a forwarder');
  assert.equal(forwarder.sentSources.sentCount, 1, 'the source was sent once');
  assert.equal(forwarder.sentSources.sentChars, source.length);
  const m = await untilValue('the source characters on /metrics', async () => {
    const m = await scrape(`${service.url}/metrics`);
    return promValue(m, 'funcx_forwarder_function_source_chars_sent', { endpoint: endpoint.endpointId }) !== undefined ? m : undefined;
  });
  assert.equal(promValue(m!, 'funcx_forwarder_function_source_chars_sent', { endpoint: endpoint.endpointId }), source.length);

  // A second batch on the same connection sends nothing new.
  const more = await sdk.batchRun(Array.from({ length: 20 }, (_, i) => i).reduce((b, i) => b.add(endpoint.endpointId, fn, i), sdk.createBatch()));
  assert.deepEqual((await sdk.getBatchResults<number>(more, { waitMs: 60_000 })).map((r) => r.value), Array.from({ length: 20 }, (_, i) => i * 2));
  assert.equal(forwarder.sentSources.sentCount, 1, 'still once');
});
