/**
 * Profiling aid for the end-to-end path: the service in this process (run with --cpu-prof), a real endpoint
 * daemon through the CLI, then 500 sequential SDK round trips (p50/p99) and batches of 10,000 (tasks/s).
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof dist/test/bench/e2e-profile.js [--database postgres://...] [--only latency|batch]
 *   node dist/test/bench/profile-summary.js /tmp/prof/*.cpuprofile
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startService } from '../../src/service/api.js';
import { silentLogger } from '../../src/logger.js';
import { FuncXClient } from '../../src/sdk/client.js';
import { percentile } from './engine-bench.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => args[args.indexOf(name) + 1] && args.includes(name) ? args[args.indexOf(name) + 1] : undefined;
const only = opt('--only');
const database = opt('--database');

const root = mkdtempSync(join(tmpdir(), 'funcx-e2e-prof-'));
const service = await startService({ home: join(root, 'service'), port: 0, log: silentLogger, taskRatePerUser: 1e9, ...(database ? { database } : {}) });
const { token } = await service.store.createUser('prof');
const env = { ...process.env, FUNCX_HOME: join(root, 'home'), FUNCX_SERVICE_URL: service.url, FUNCX_TOKEN: token };
const cli = fileURLToPath(new URL('../../src/cli/endpoint.js', import.meta.url));
// Async: the service answers from this very process.
const run = async (argv: string[]): Promise<string> => (await promisify(execFile)(process.execPath, [cli, ...argv], { env })).stdout;
await run(['init', '--service', service.url]);
writeFileSync(join(root, 'home', 'default', 'config.ts'), `import { Config, LocalProvider } from 'funcx-endpoint';
export default new Config({ engine: { address: '127.0.0.1', max_workers_per_node: 2 }, provider: new LocalProvider({ init_blocks: 1, min_blocks: 1 }) });
`);
await run(['start']);
try {
  const endpointId = JSON.parse(await run(['list', '--json']))[0].id;
  const client = new FuncXClient({ serviceUrl: service.url, token });
  const noop = await client.registerFunction(() => null, { name: 'noop' });
  await client.getResult(await client.run(endpointId, noop), { waitMs: 30_000 });
  if (only !== 'batch') {
    const lat: number[] = [];
    const submit: number[] = [];
    // Where a round trip's time goes, from the task's transitions (ms): stored → delivered → running → result stored → SDK has it.
    const stages = { queued: [] as number[], toRunning: [] as number[], toResult: [] as number[], toClient: [] as number[] };
    for (let i = 0; i < (process.env.FUNCX_PROFILE_SHOW === '1' ? 600 : 600); i++) {
      const t = performance.now();
      const id = await client.run(endpointId, noop);
      const s = performance.now();
      await client.getResult(id, { waitMs: 30_000 });
      const done = Date.now();
      if (i >= 100) {
        lat.push(performance.now() - t);
        submit.push(s - t);
        const tr = await service.store.transitions(id);
        if (i === 599 && process.env.FUNCX_PROFILE_SHOW === '1') console.log(JSON.stringify(tr));
        const at = new Map(tr.map((x) => [x.state, x.at]));
        stages.queued.push(at.get('waiting-for-nodes')! - at.get('received')!);
        stages.toRunning.push((at.get('running') ?? at.get('success')!) - at.get('waiting-for-nodes')!);
        stages.toResult.push(at.get('success')! - (at.get('running') ?? at.get('waiting-for-nodes')!));
        stages.toClient.push(done - at.get('success')!);
      }
    }
    lat.sort((a, b) => a - b);
    submit.sort((a, b) => a - b);
    console.log(`round trip p50 ${percentile(lat, 50).toFixed(2)} ms, p99 ${percentile(lat, 99).toFixed(2)} ms; of which submit (POST /v1/tasks) p50 ${percentile(submit, 50).toFixed(2)} ms`);
    for (const [k, v] of Object.entries(stages)) {
      v.sort((a, b) => a - b);
      console.log(`  ${k}: p50 ${percentile(v, 50)} ms, p90 ${percentile(v, 90)} ms`);
    }
  }
  if (only !== 'latency') {
    for (const n of [2000, 10_000, 10_000]) {
      const batch = client.createBatch();
      for (let i = 0; i < n; i++) batch.add(endpointId, noop);
      const s = performance.now();
      const ids = await client.batchRun(batch);
      const submitted = performance.now();
      const results = await client.getBatchResults(ids, { waitMs: 120_000 });
      const seconds = (performance.now() - s) / 1000;
      const ok = results.filter((r) => r.ok).length;
      console.log(`batch of ${n}: ${ok} ok, ${(n / seconds).toFixed(0)} tasks/s (submit ${(submitted - s).toFixed(0)} ms)`);
    }
  }
} finally {
  await run(['stop']);
  await service.close();
}
