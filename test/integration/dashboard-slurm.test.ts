/**
 * The dashboard during a burst on the real Slurm test cluster, in a real headless Chromium: a real endpoint
 * daemon (started by the CLI, Slurm profile, no block until work arrives) shows as Active; a burst
 * submitted with the SDK makes the block timeline gain a Slurm job and the tasks/s chart count every
 * completed task. Waits are on the page's state. The screenshot (test-output/dashboard-slurm-burst.png) is
 * the one in the README.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { startService, type RunningService } from '../../src/service/api.js';
import { FuncXClient } from '../../src/sdk/client.js';
import { silentLogger } from '../../src/logger.js';
import { ensureSlurm } from './cluster-setup.js';
import { launchBrowser, outputDir } from '../helpers/browser.js';

const CLI = fileURLToPath(new URL('../../src/cli/endpoint.js', import.meta.url));
let tmp = '';
let home = '';
let service: RunningService;
let token = '';
let browser: { context: BrowserContext; close: () => Promise<void> };
let page: Page;

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

const profile = (scripts: string) => `import { Config, SlurmProvider, SrunLauncher, LocalChannel } from 'funcx-endpoint';
export default new Config({
  engine: { address: '127.0.0.1', max_workers_per_node: 4, heartbeat_period: 1, heartbeat_threshold: 6 },
  provider: new SlurmProvider({
    partition: 'debug', nodes_per_block: 1, walltime: '00:10:00', init_blocks: 0, min_blocks: 0, max_blocks: 1,
    launcher: new SrunLauncher(), channel: new LocalChannel({ script_dir: ${JSON.stringify(scripts)} }),
  }),
  strategy: { period: 1, max_idletime: 30 },
});
`;

before(async () => {
  await ensureSlurm();
  tmp = mkdtempSync(join(tmpdir(), 'funcx-dashboard-slurm-'));
  home = join(tmp, 'home');
  process.env.FUNCX_DASHBOARD_PERIOD_MS = '500';
  service = await startService({ home: join(tmp, 'service'), port: 0, log: silentLogger });
  delete process.env.FUNCX_DASHBOARD_PERIOD_MS;
  token = await (await service.store.createUser('alice')).token;
  // The profile is written before the one start (a start, then a restart on it, cost a daemon start more).
  const configured = await cli(['configure']);
  assert.equal(configured.code, 0, configured.stderr);
  writeFileSync(join(home, 'default', 'config.ts'), profile(join(tmp, 'scripts')));
  const started = await cli(['start']);
  assert.equal(started.code, 0, started.stderr);
  browser = await launchBrowser();
  page = await browser.context.newPage();
});

after(async () => {
  await browser?.close();
  if (service) await cli(['stop']);
  await service?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('a burst on Slurm: the block timeline gains a Slurm job and the tasks/s chart counts the completions', async () => {
  await page.goto(`${service.url}/`);
  await page.fill('#token', token);
  await page.click('#signin button[type=submit]');
  const card = 'section.endpoint[data-endpoint-name="default"]';
  await page.waitForSelector(`${card}[data-state="Active"]`);
  // The daemon's own facts arrive with its first status report.
  await page.waitForSelector(`${card} .facts .host`);
  assert.equal(await page.locator(`${card} tr.block`).count(), 0, 'no block before any work (init_blocks 0)');

  const sdk = new FuncXClient({ serviceUrl: service.url, token });
  const [endpoint] = await sdk.listEndpoints();
  const fn = await sdk.registerFunction(async (ms: number) => {
    await new Promise((r) => setTimeout(r, ms));
    return ms;
  });
  const batch = sdk.createBatch();
  for (let i = 0; i < 120; i++) batch.add(endpoint.endpointId, fn, 250);
  const ids = await sdk.batchRun(batch);
  // A block appears for the burst, with the scheduler's job id, and runs.
  const row = page.locator(`${card} tr.block[data-state="running"]`);
  await row.waitFor({ timeout: 120_000 });
  assert.match(await row.locator('td').nth(1).innerText(), /^\d+$/, 'the Slurm job id is shown');
  // Mid-burst: tasks completing and the chart drawing them, the picture for the README.
  await page.waitForFunction((sel) => Number(document.querySelector(`${sel} .chart-rate`)?.getAttribute('data-completed')) >= 30, card, { timeout: 120_000 });
  await page.screenshot({ path: join(outputDir(), 'dashboard-slurm-burst.png'), fullPage: true });
  const results = await sdk.getBatchResults(ids, { waitMs: 180_000 });
  assert.equal(results.filter((r) => r.ok).length, 120);
  await page.waitForFunction((sel) => Number(document.querySelector(`${sel} .chart-rate`)?.getAttribute('data-completed')) >= 120, card, { timeout: 60_000 });
  assert.match(await page.locator(`${card} .decisions`).innerText(), /submit/);
  await page.screenshot({ path: join(outputDir(), 'dashboard-slurm-done.png'), fullPage: true });
});
