/**
 * The endpoint daemon's /metrics (profile `metrics_port`) on a real daemon with a local block: parsed by an
 * independent Prometheus parser, the figures agree with `funcx-endpoint status --json`; and
 * `funcx-endpoint status --watch` redraws in place under a pseudo-terminal (util-linux `script`) until Ctrl-C.
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
import { histogramCount, promValue, scrape } from '../helpers/prometheus.js';
import { until, untilValue } from '../helpers/wait.js';

const CLI = fileURLToPath(new URL('../../src/cli/endpoint.js', import.meta.url));
let tmp = '';
let home = '';
let service: RunningService;
let token = '';

interface Run { code: number | null; stdout: string; stderr: string }

function env(): Record<string, string> {
  const e: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('FUNCX_')) e[k] = v;
  return Object.assign(e, { FUNCX_HOME: home, FUNCX_SERVICE_URL: service.url, FUNCX_TOKEN: token });
}

function cli(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
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
  metrics_port: 0,
});
`;

interface StatusJson {
  status: string;
  metricsPort: number | null;
  backlog: number;
  managers: unknown[];
  blocks: Array<{ state: string; managers: number; busyWorkers: number; idleWorkers: number }>;
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'funcx-endpoint-metrics-'));
  home = join(tmp, 'home');
  service = await startService({ home: join(tmp, 'service'), port: 0, log: silentLogger });
  token = await (await service.store.createUser('alice')).token;
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

const status = async (): Promise<StatusJson> => JSON.parse((await cli(['status', '--json'])).stdout) as StatusJson;

test('metrics_port: blocks, managers, workers, tasks, results, scheduler commands and decisions agree with status --json', async () => {
  const ready = await untilValue<StatusJson | undefined>('a running block with its manager and the metrics port in status --json', async () => {
    const s = await status();
    return s.metricsPort && s.blocks.some((b) => b.state === 'running' && b.managers === 1) ? s : undefined;
  });
  const url = `http://127.0.0.1:${ready!.metricsPort}/metrics`;
  const sdk = new FuncXClient({ serviceUrl: service.url, token });
  const [endpoint] = await sdk.listEndpoints();
  const fn = await sdk.registerFunction((x: number) => {
    if (x === 0) throw new Error('zero');
    return x;
  });
  const ids = await sdk.batchRun(Array.from({ length: 21 }, (_, i) => i).reduce((b, i) => b.add(endpoint.endpointId, fn, i), sdk.createBatch()));
  const results = await sdk.getBatchResults(ids, { waitMs: 60_000 });
  assert.equal(results.filter((r) => r.ok === false).length, 1);

  // Results are counted when handed to the forwarder client, and status.json is rewritten every second: wait
  // until one scrape and one status both show the quiet endpoint (all 21 results counted, no worker busy),
  // then compare them (nothing moves any more: all tasks are done, the block stays: min_blocks 1).
  const { m, s } = (await untilValue('a scrape and a status both showing all 21 results and no busy worker', async () => {
    const m = await scrape(url);
    const counted = (promValue(m, 'funcx_endpoint_results_total', { outcome: 'success' }) ?? 0) + (promValue(m, 'funcx_endpoint_results_total', { outcome: 'failed' }) ?? 0);
    if (counted !== 21 || promValue(m, 'funcx_endpoint_workers', { state: 'busy' }) !== 0) return undefined;
    const s = await status();
    return s.blocks.reduce((n, b) => n + b.busyWorkers, 0) === 0 ? { m, s } : undefined;
  }))!;
  assert.equal(promValue(m, 'funcx_endpoint_results_total', { outcome: 'failed' }), 1);
  assert.equal(promValue(m, 'funcx_endpoint_tasks_received_total'), 21);
  assert.equal(promValue(m, 'funcx_endpoint_tasks_dispatched_total'), 21);
  assert.equal(promValue(m, 'funcx_endpoint_blocks', { state: 'running' }), s.blocks.filter((b) => b.state === 'running').length);
  assert.equal(promValue(m, 'funcx_endpoint_managers'), s.managers.length);
  assert.equal(promValue(m, 'funcx_endpoint_workers', { state: 'busy' }), s.blocks.reduce((n, b) => n + b.busyWorkers, 0));
  assert.equal(promValue(m, 'funcx_endpoint_workers', { state: 'idle' }), s.blocks.reduce((n, b) => n + b.idleWorkers, 0));
  assert.equal(promValue(m, 'funcx_endpoint_backlog_tasks'), s.backlog);
  assert.equal(histogramCount(m.text, 'funcx_endpoint_scheduler_command_duration_seconds', { command: 'submit' }), 1, 'one block submitted');
  assert.ok((histogramCount(m.text, 'funcx_endpoint_scheduler_command_duration_seconds', { command: 'status' }) ?? 0) >= 1);
  assert.equal(promValue(m, 'funcx_endpoint_scheduler_command_failures_total', { command: 'submit' }), 0);
  assert.equal(promValue(m, 'funcx_endpoint_strategy_decisions_total', { kind: 'submit' }), 1, 'the init block');
  assert.ok((promValue(m, 'funcx_endpoint_strategy_decisions_total', { kind: 'none' }) ?? 0) >= 1);
  assert.ok([...m.keys()].every((name) => name.startsWith('funcx_endpoint_')));
});

test('status --watch redraws the tables in place every second until Ctrl-C (under a pseudo-terminal)', async () => {
  const command = [process.execPath, CLI, 'status', 'default', '--watch'].map((a) => `'${a}'`).join(' ');
  const child = spawn('script', ['-q', '-e', '-c', `exec ${command}`, '/dev/null'], { env: env(), stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  // Three frames: each starts with cursor-home and holds the tables.
  const frames = () => out.split('\x1b[H').slice(1).filter((f) => f.includes('Blocks') && f.includes('Managers'));
  await until('three redraws of the status tables', () => frames().length >= 3);
  assert.match(out, /\x1b\[\?25l\x1b\[2J/, 'hides the cursor and clears the screen once');
  assert.ok(!/\x1b\[2J/.test(out.slice(out.indexOf('\x1b[H'))), 'redraws in place: no further full clears');
  assert.match(frames()[0], /Endpoint default: Active/);
  child.stdin.write('\x03');
  assert.equal(await exited, 0, `exit after Ctrl-C; output: ${JSON.stringify(out.slice(-300))}`);
  assert.match(out, /\x1b\[\?25h/, 'the cursor is shown again');
});
