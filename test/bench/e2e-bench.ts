/**
 * End to end (issue 3): SDK → service → forwarder → endpoint → manager → worker and back, with the real
 * CLIs in a temporary home. A batch of 10,000 no-ops (tasks/s) and 200 sequential single round trips: the
 * SDK's single-task call (`call`: one POST /v1/tasks?wait), and, interleaved with them, `run` + `getResult`
 * (a submission, then a long-poll).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FuncXClient } from '../../src/sdk/client.js';
import { percentile } from './engine-bench.js';

export interface EndToEndFigures {
  /** The median of three batches of 10,000 after the first (warm, as the engine's figure is). */
  e2e_batch_tasks_per_s: number;
  /** The first batch of 10,000 (after one of 2,000): every process still compiling its hot path. */
  e2e_batch_first_tasks_per_s: number;
  e2e_latency_p50_ms: number;
  e2e_latency_p99_ms: number;
  /** The same round trip as `run` then `getResult` (two requests). */
  e2e_latency_run_get_p50_ms: number;
  e2e_start_to_active_s: number;
}

/** The bench measures the task path, not the per-user submission rate limit (task-rate.ts). */
const UNLIMITED_RATE = ['--rate-tasks', '1000000000'];
const cli = (name: string): string => fileURLToPath(new URL(`../../src/cli/${name}.js`, import.meta.url));

const PROFILE = `import { Config, LocalProvider } from 'funcx-endpoint';
export default new Config({
  engine: { address: '127.0.0.1', max_workers_per_node: 2 },
  provider: new LocalProvider({ init_blocks: 1, min_blocks: 1, max_blocks: 1 }),
});
`;

/** Sign in to the dashboard and keep its server-sent events stream read, as an open page does. */
async function openDashboardFeed(url: string, token: string, progress: (m: string) => void): Promise<{ close: () => void }> {
  const signin = await fetch(`${url}/ui/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
  const cookie = (signin.headers.get('set-cookie') ?? '').split(';')[0];
  const abort = new AbortController();
  const feed = await fetch(`${url}/ui/api/events`, { headers: { cookie }, signal: abort.signal });
  if (!feed.ok || !feed.body) throw new Error(`dashboard events: ${feed.status}`);
  let events = 0;
  void (async () => {
    for await (const chunk of feed.body!) events += (Buffer.from(chunk as Uint8Array).toString().match(/^event: /gm) ?? []).length;
  })().catch(() => {});
  progress('end to end: a dashboard feed is open');
  return { close: () => (progress(`end to end: the dashboard feed got ${events} events`), abort.abort()) };
}

export interface EndToEndOptions {
  /** The service's database (a postgres:// URL); SQLite in the service home when absent. */
  database?: string;
  /** Run a second replica on the same database and send the SDK's requests there (the endpoint stays on the first). */
  secondReplica?: boolean;
  /** Label for progress lines. */
  label?: string;
}

/** Tasks/s of one batch of `n` calls of `fn` (no arguments): submitted, then every result read back. */
export async function batchRate(client: FuncXClient, endpointId: string, fn: string, n: number): Promise<number> {
  const batch = client.createBatch();
  for (let i = 0; i < n; i++) batch.add(endpointId, fn);
  const s = performance.now();
  const ids = await client.batchRun(batch);
  const results = await client.getBatchResults(ids, { waitMs: 120_000 });
  const seconds = (performance.now() - s) / 1000;
  const ok = results.filter((r) => r.ok).length;
  if (ok !== n) throw new Error(`end-to-end batch: ${ok}/${n} succeeded`);
  return n / seconds;
}

export async function benchEndToEnd(progress: (m: string) => void = () => {}, options: EndToEndOptions = {}): Promise<EndToEndFigures> {
  const root = mkdtempSync(join(tmpdir(), 'funcx-e2e-'));
  const env: NodeJS.ProcessEnv = { ...process.env, FUNCX_HOME: join(root, 'home'), FUNCX_SERVICE_HOME: join(root, 'service') };
  if (options.database) env.FUNCX_DATABASE_URL = options.database;
  else delete env.FUNCX_DATABASE_URL;
  mkdirSync(env.FUNCX_SERVICE_HOME!, { recursive: true, mode: 0o700 });
  const replicaEnv: NodeJS.ProcessEnv = { ...env, FUNCX_SERVICE_HOME: join(root, 'service-2') };
  const run = (program: string, args: string[], e: NodeJS.ProcessEnv = env): string =>
    execFileSync(process.execPath, [cli(program), ...args], { env: e, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const label = options.label ?? 'end to end';
  let started = false;
  let secondStarted = false;
  let dashboard: { close: () => void } | undefined;
  try {
    const url = /running at (\S+)/.exec(run('service', ['start', '--port', '0', ...UNLIMITED_RATE]))![1];
    env.FUNCX_SERVICE_URL = url;
    let clientUrl = url;
    if (options.secondReplica) {
      mkdirSync(replicaEnv.FUNCX_SERVICE_HOME!, { recursive: true, mode: 0o700 });
      clientUrl = /running at (\S+)/.exec(run('service', ['start', '--port', '0', ...UNLIMITED_RATE], replicaEnv))![1];
      secondStarted = true;
    }
    const token = /fx_[A-Za-z0-9_-]+/.exec(run('service', ['user', 'add', 'bench']))![0];
    env.FUNCX_TOKEN = token;
    run('endpoint', ['init', '--service', url]);
    writeFileSync(join(env.FUNCX_HOME!, 'default', 'config.ts'), PROFILE);
    const t0 = performance.now();
    run('endpoint', ['start']);
    started = true;
    const startToActive = (performance.now() - t0) / 1000;
    progress(`${label}: start → Active ${startToActive.toFixed(2)} s`);
    const endpointId = JSON.parse(run('endpoint', ['list', '--json']))[0].id as string;
    // FUNCX_BENCH_DASHBOARD=1: a dashboard page stays open (signed in, live events connected) during the run.
    if (process.env.FUNCX_BENCH_DASHBOARD === '1') dashboard = await openDashboardFeed(url, token, progress);
    const client = new FuncXClient({ serviceUrl: clientUrl, token });
    const noop = await client.registerFunction(() => null, { name: 'noop' });
    await client.getResult(await client.run(endpointId, noop), { waitMs: 30_000 }); // warm: block up

    const latencies: number[] = [];
    const runGet: number[] = [];
    for (let i = 0; i < 220; i++) {
      const s = performance.now();
      await client.call(endpointId, noop, [], { waitMs: 30_000 });
      const m = performance.now();
      await client.getResult(await client.run(endpointId, noop), { waitMs: 30_000 });
      if (i >= 20) latencies.push(m - s), runGet.push(performance.now() - m);
    }
    latencies.sort((a, b) => a - b);
    runGet.sort((a, b) => a - b);
    progress(`${label}: single round trip p50 ${percentile(latencies, 50).toFixed(2)} ms (run + getResult ${percentile(runGet, 50).toFixed(2)} ms)`);

    // Measured as the engine's throughput is: warm, the median of three. The first batch of 10,000 is kept
    // apart: CPU per task summed over the processes falls ~2x over the first 30,000 tasks (batch-cpu.js) as
    // V8 compiles each process's hot path and batches downstream grow.
    const runBatch = (n: number): Promise<number> => batchRate(client, endpointId, noop, n);
    await runBatch(2000);
    const first = await runBatch(10_000);
    const warm = [await runBatch(10_000), await runBatch(10_000), await runBatch(10_000)].sort((a, b) => a - b);
    const rate = warm[1];
    progress(`${label}: batch of 10,000 at ${rate.toFixed(0)} tasks/s warm (${warm.map((r) => r.toFixed(0)).join(', ')}), the first ${first.toFixed(0)}`);
    return {
      e2e_batch_tasks_per_s: rate,
      e2e_batch_first_tasks_per_s: first,
      e2e_latency_p50_ms: percentile(latencies, 50),
      e2e_latency_p99_ms: percentile(latencies, 99),
      e2e_latency_run_get_p50_ms: percentile(runGet, 50),
      e2e_start_to_active_s: startToActive,
    };
  } finally {
    dashboard?.close();
    try {
      if (started) run('endpoint', ['stop']);
    } finally {
      if (secondStarted) run('service', ['stop'], replicaEnv);
      run('service', ['stop']);
      rmSync(root, { recursive: true, force: true });
    }
  }
}
