/**
 * `npm run demo`: the whole system on this machine, as a user would drive it. It starts a web service on a
 * free port, creates a user, inits and starts an endpoint on the embedded default (LocalProvider), then uses
 * the SDK to run a JS function, a shell command and a batch of 1,000, and stops everything.
 * Everything lives in a temporary folder; nothing in your own ~/.funcx is touched.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FuncXClient, ShellFunction } from 'funcx-endpoint';

const root = mkdtempSync(join(tmpdir(), 'funcx-demo-'));
const cli = (name: string): string => fileURLToPath(new URL(`../src/cli/${name}.js`, import.meta.url));
const env: NodeJS.ProcessEnv = { ...process.env, FUNCX_HOME: join(root, 'home'), FUNCX_SERVICE_HOME: join(root, 'service') };
mkdirSync(env.FUNCX_SERVICE_HOME!, { recursive: true, mode: 0o700 });
const run = (program: string, args: string[], quiet = false): string => {
  const out = execFileSync(process.execPath, [cli(program), ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (!quiet) process.stdout.write(out.replace(/^(?=.)/gm, `  ${program === 'funcx-service' ? 'service' : program}> `));
  return out;
};
const step = (m: string): void => console.log(`\n▶ ${m}`);

let serviceStarted = false;
let endpointStarted = false;
try {
  step('funcx-service start (a free port, state in a temporary folder)');
  const started = run('service', ['start', '--port', '0']);
  serviceStarted = true;
  const url = /running at (\S+)/.exec(started)?.[1];
  if (!url) throw new Error(`could not read the service URL from: ${started}`);
  env.FUNCX_SERVICE_URL = url;

  step('funcx-service user add demo');
  const token = /fx_[A-Za-z0-9_-]+/.exec(run('service', ['user', 'add', 'demo'], true))?.[0];
  if (!token) throw new Error('no token printed by `funcx-service user add`');
  console.log('  (token printed once; kept in the environment for this demo)');
  env.FUNCX_TOKEN = token;

  step('funcx-endpoint init && funcx-endpoint start');
  run('endpoint', ['init', '--service', url]);
  const t0 = Date.now();
  run('endpoint', ['start']);
  endpointStarted = true;
  console.log(`  start → Active in ${((Date.now() - t0) / 1000).toFixed(2)} s`);
  run('endpoint', ['list']);
  const endpointId = JSON.parse(run('endpoint', ['list', '--json'], true))[0].id as string;

  const client = new FuncXClient({ serviceUrl: url, token });
  step('register a JS function and run it');
  const add = await client.registerFunction((a: number, b: number) => a + b, { name: 'add' });
  const taskId = await client.run(endpointId, add, 20, 22);
  console.log(`  add(20, 22) = ${await client.getResult(taskId)}`);
  const transitions = await client.getTransitions(taskId);
  console.log(`  transitions: ${transitions.map((t) => t.state).join(' → ')}`);

  step('run a shell command');
  const shell = await client.getResult<{ returncode: number; stdout: string }>(await client.run(endpointId, ShellFunction('echo "hello from $(hostname)"; uname -s')));
  console.log(`  returncode ${shell.returncode}; stdout: ${shell.stdout.trim().replace(/\n/g, ' | ')}`);

  step('a batch of 1,000 tasks');
  const square = await client.registerFunction((x: number) => x * x, { name: 'square' });
  const batch = client.createBatch();
  for (let i = 0; i < 1000; i++) batch.add(endpointId, square, i);
  const b0 = Date.now();
  const ids = await client.batchRun(batch);
  let lastShown = -1;
  const results = await client.getBatchResults<number>(ids, {
    waitMs: 120_000,
    onProgress: (done, total) => {
      const pct = Math.floor((100 * done) / total / 10) * 10;
      if (pct !== lastShown) process.stdout.write(`  ${pct}%`);
      lastShown = pct;
    },
  });
  const seconds = (Date.now() - b0) / 1000;
  const ok = results.filter((r) => r.ok).length;
  const sum = results.reduce((s, r) => s + (r.ok ? (r.value as number) : 0), 0);
  console.log(`\n  ${ok}/1000 succeeded, sum of squares ${sum} (expected 332833500), ${(1000 / seconds).toFixed(0)} tasks/s end to end`);

  step('funcx-endpoint status');
  run('endpoint', ['status']);
} finally {
  step('stopping everything');
  if (endpointStarted) run('endpoint', ['stop']);
  if (serviceStarted) run('service', ['stop']);
  if (process.env.FUNCX_DEMO_KEEP) console.log(`  (kept ${root})`);
  else rmSync(root, { recursive: true, force: true });
}
