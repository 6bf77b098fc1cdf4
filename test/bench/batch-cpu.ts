/**
 * CPU per task, per process, of end-to-end batches (issue 14): the service and the endpoint as their own
 * processes (the real CLIs, as e2e-bench.ts), then warm batches of 10,000 no-ops through `batchRun` +
 * `getBatchResults`. For each batch: tasks/s, and the CPU (user + system, from /proc) each process spent per
 * task: the SDK (this process), the service (and its main thread), the endpoint daemon, managers, workers.
 *
 *   node dist/test/bench/batch-cpu.js [--dist /other/checkout/dist] [--batches 5] [--size 10000] [--prof DIR]
 *     [--calls N]   (rows of N sequential single calls instead of batches: CPU per call; tasks_per_s is calls/s)
 *
 * `--dist` runs another build (CLIs and SDK) with this driver, for before/after pairs. `--prof DIR` has the
 * service, endpoint daemon and workers write V8 CPU profiles to DIR (FUNCX_CPU_PROFILE_DIR, profilingArgs;
 * summarise them with profile-summary.js).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { batchRate } from './e2e-bench.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const dist = resolve(opt('--dist') ?? fileURLToPath(new URL('../..', import.meta.url)));
const batches = Number(opt('--batches') ?? 5);
const size = Number(opt('--size') ?? 10_000);
const profDir = opt('--prof');
/** --calls N: instead of batches, N sequential single calls per row (CPU per call; tasks_per_s is calls/s). */
const calls = Number(opt('--calls') ?? 0);
/** --threads: the service's CPU by thread name too. */
const threads = args.includes('--threads');

const { FuncXClient } = (await import(pathToFileURL(join(dist, 'src/sdk/client.js')).href)) as typeof import('../../src/sdk/client.js');
const cli = (name: string): string => join(dist, 'src/cli', `${name}.js`);
const TICK_US = 1e6 / 100; // USER_HZ

const PROFILE = `import { Config, LocalProvider } from 'funcx-endpoint';
export default new Config({
  engine: { address: '127.0.0.1', max_workers_per_node: 2 },
  provider: new LocalProvider({ init_blocks: 1, min_blocks: 1, max_blocks: 1 }),
});
`;

/** utime + stime of /proc/PID[/task/TID]/stat, in µs. */
function cpuOf(path: string): number {
  try {
    const stat = readFileSync(path, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_US;
  } catch {
    return 0;
  }
}

type Role = 'service' | 'service-main' | 'daemon' | 'manager' | 'worker' | 'other' | `thread:${string}`;

/** CPU so far of every process of this run (found by the run's directory in its environment), by role. */
function cpuByRole(root: string): Map<Role, number> {
  const out = new Map<Role, number>();
  const add = (role: Role, us: number) => out.set(role, (out.get(role) ?? 0) + us);
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    let environ: string;
    let cmd: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
    } catch {
      continue;
    }
    if (!environ.includes(root)) continue;
    const us = cpuOf(`/proc/${pid}/stat`);
    if (cmd.includes('cli/service.js')) {
      add('service', us);
      add('service-main', cpuOf(`/proc/${pid}/task/${pid}/stat`));
      if (threads) {
        for (const tid of readdirSync(`/proc/${pid}/task`)) {
          let comm = 'gone';
          try {
            comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
          } catch {}
          add(`thread:${comm}` as Role, cpuOf(`/proc/${pid}/task/${tid}/stat`));
        }
      }
    } else if (cmd.includes('endpoint-daemon')) add('daemon', us);
    else if (cmd.includes('manager')) add('manager', us);
    else if (cmd.includes('worker')) add('worker', us);
    else add('other', us);
  }
  return out;
}

const root = mkdtempSync(join(tmpdir(), 'funcx-batch-cpu-'));
const env: NodeJS.ProcessEnv = { ...process.env, FUNCX_HOME: join(root, 'home'), FUNCX_SERVICE_HOME: join(root, 'service') };
delete env.FUNCX_DATABASE_URL;
// --node-options '…': for the service and endpoint processes (and their children), e.g. V8 heap flags.
if (opt('--node-options')) env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} ${opt('--node-options')}`;
if (profDir) {
  mkdirSync(profDir, { recursive: true });
  env.FUNCX_CPU_PROFILE_DIR = profDir; // the service, the endpoint daemon and workers (profilingArgs)
}
mkdirSync(env.FUNCX_SERVICE_HOME!, { recursive: true, mode: 0o700 });
// --service-node-options '…': for the service process alone.
const serviceOptions = opt('--service-node-options');
const run = (program: string, argv: string[]): string =>
  execFileSync(process.execPath, [cli(program), ...argv], {
    env: program === 'service' && serviceOptions ? { ...env, NODE_OPTIONS: `${env.NODE_OPTIONS ?? ''} ${serviceOptions}` } : env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
let started = false;
try {
  const url = /running at (\S+)/.exec(run('service', ['start', '--port', '0', '--rate-tasks', '1000000000']))![1];
  env.FUNCX_SERVICE_URL = url;
  const token = /fx_[A-Za-z0-9_-]+/.exec(run('service', ['user', 'add', 'bench']))![0];
  env.FUNCX_TOKEN = token;
  run('endpoint', ['init', '--service', url]);
  writeFileSync(join(env.FUNCX_HOME!, 'default', 'config.ts'), PROFILE);
  run('endpoint', ['start']);
  started = true;
  const endpointId = JSON.parse(run('endpoint', ['list', '--json']))[0].id as string;
  const client = new FuncXClient({ serviceUrl: url, token });
  const noop = await client.registerFunction(() => null, { name: 'noop' });
  await client.getResult(await client.run(endpointId, noop), { waitMs: 30_000 });
  const runBatch = (n: number): Promise<number> => batchRate(client, endpointId, noop, n);
  /** Sequential calls/s of `n` single calls (SDK `call`, one POST ?wait each). */
  const callRate = async (n: number): Promise<number> => {
    const s = performance.now();
    for (let i = 0; i < n; i++) await client.call(endpointId, noop, [], { waitMs: 30_000 });
    return n / ((performance.now() - s) / 1000);
  };
  if (calls) await callRate(calls); // warm
  else {
    await runBatch(2000);
    await runBatch(size); // warm
  }
  const rows: Array<Record<string, number>> = [];
  for (let b = 0; b < batches; b++) {
    const before = cpuByRole(root);
    const sdk0 = process.cpuUsage();
    const rate = calls ? await callRate(calls) : await runBatch(size);
    const sdk1 = process.cpuUsage(sdk0);
    const after = cpuByRole(root);
    const per = calls || size;
    const row: Record<string, number> = { tasks_per_s: Math.round(rate), sdk: (sdk1.user + sdk1.system) / per };
    for (const [role, us] of after) row[role] = (us - (before.get(role) ?? 0)) / per;
    row.total = row.sdk + (row.service ?? 0) + (row.daemon ?? 0) + (row.manager ?? 0) + (row.worker ?? 0) + (row.other ?? 0);
    rows.push(row);
  }
  const median = (k: string): number => {
    const v = rows.map((r) => r[k] ?? 0).sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)];
  };
  const keys = ['tasks_per_s', 'total', 'sdk', 'service', 'service-main', 'daemon', 'manager', 'worker', 'other'];
  const fmt = (r: Record<string, number>): string => keys.map((k) => `${k} ${k === 'tasks_per_s' ? r[k] : (r[k] ?? 0).toFixed(1)}`).join('  ');
  for (const r of rows) console.log(fmt(r));
  if (threads) for (const r of rows) console.log(Object.entries(r).filter(([k]) => k.startsWith('thread:')).map(([k, v]) => `${k.slice(7)} ${v.toFixed(1)}`).join('  '));
  console.log(`median (µs/task)  ${fmt(Object.fromEntries(keys.map((k) => [k, median(k)])))}`);
  console.log(JSON.stringify({ dist, median: Object.fromEntries(keys.map((k) => [k, median(k)])) }));
} finally {
  try {
    if (started) run('endpoint', ['stop']);
  } finally {
    run('service', ['stop']);
    rmSync(root, { recursive: true, force: true });
  }
}
