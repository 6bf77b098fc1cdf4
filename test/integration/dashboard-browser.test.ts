/**
 * The web dashboard in a real headless Chromium (Debian's, through playwright-core) against the real
 * service: sign in by pasting a token (kept only as an HttpOnly cookie), see one's own endpoint and never
 * another user's, watch the tasks/s chart follow completed tasks over server-sent events, open a failed
 * task and read the remote error, and see a request without the CSRF token refused. Every wait is on the
 * page's state, never on time. Screenshots go under test-output/.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { startService, type RunningService } from '../../src/service/api.js';
import { FuncXClient } from '../../src/sdk/client.js';
import { silentLogger } from '../../src/logger.js';
import { FakeEndpoint, removeFakeEndpointDirs } from '../helpers/fake-endpoint.js';
import { launchBrowser, outputDir } from '../helpers/browser.js';

let tmp = '';
let service: RunningService;
let browser: { context: BrowserContext; close: () => Promise<void> };
let alice: { token: string; sdk: FuncXClient };
let aliceEp: FakeEndpoint;
let bobEp: FakeEndpoint;
let page: Page;

/** What a real endpoint answers to `status` (EngineStatus plus the daemon's facts), trimmed to one block. */
function report(blockState: string) {
  return {
    state: 'running', port: 55000, backlog: 0, pending: 0,
    managers: [{ id: 'm1', blockId: '0', hostname: 'node1', node: 'node1', workers: 2, outstanding: 0, idleS: 1 }],
    blocks: [{ id: '0', jobId: '4242', state: blockState, nodes: 1, ageS: 3, walltimeLeftS: 600, held: false, draining: false, managers: 1, busyWorkers: 0, idleWorkers: 2 }],
    missing: [], submitHealth: { consecutiveSubmitFailures: 0, lastSubmitError: null, pausedUntil: 0, paused: false, pausedReason: null, missingCount: 0, consecutiveMissing: 0, lastStatusError: null },
    decision: { at: Date.now(), submit: [{ nodes: 1, walltimeS: 600 }], hold: [], release: [], cancel: [], drain: [], reason: 'submit 1 block(s) of 1 node(s) for the backlog' },
    daemon: { host: 'login-test', pid: 4242, startedAt: Date.now() - 60_000, version: '0.1.0' },
  };
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'funcx-dashboard-'));
  process.env.FUNCX_DASHBOARD_PERIOD_MS = '250';
  service = await startService({ home: join(tmp, 'service'), port: 0, heartbeatPeriodMs: 100, heartbeatThresholdMs: 3000, log: silentLogger });
  delete process.env.FUNCX_DASHBOARD_PERIOD_MS;
  const a = await service.store.createUser('alice');
  alice = { token: a.token, sdk: new FuncXClient({ serviceUrl: service.url, token: a.token }) };
  const b = await service.store.createUser('bob');
  aliceEp = await FakeEndpoint.start(service.url, a.token, { name: 'alice-ep' });
  aliceEp.report = report('pending');
  bobEp = await FakeEndpoint.start(service.url, b.token, { name: 'bob-ep' });
  bobEp.report = report('running');
  browser = await launchBrowser();
  page = await browser.context.newPage();
});

after(async () => {
  await browser?.close();
  await aliceEp?.close();
  await bobEp?.close();
  await service?.close();
  removeFakeEndpointDirs();
  rmSync(tmp, { recursive: true, force: true });
});

const shot = (name: string) => page.screenshot({ path: join(outputDir(), `dashboard-${name}.png`), fullPage: true });

test('sign in with a pasted token: an HttpOnly session cookie, never the token in a URL or script', async () => {
  await page.goto(`${service.url}/`);
  await page.fill('#token', 'not-a-token');
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#signin-error:text("invalid token")');
  await page.fill('#token', alice.token);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#who:text("signed in as alice")');
  assert.equal(await page.evaluate(() => document.cookie), '', 'the session cookie is HttpOnly');
  const cookies = await browser.context.cookies();
  assert.equal(cookies.length, 1);
  assert.equal(cookies[0].httpOnly, true);
  assert.equal(cookies[0].sameSite, 'Strict');
  assert.ok(!cookies[0].value.includes(alice.token));
  assert.ok(!page.url().includes(alice.token));
  assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0);
});

test("one's own endpoint with its block and decision, never another user's", async () => {
  const card = page.locator('section.endpoint[data-endpoint-name="alice-ep"]');
  await card.waitFor();
  assert.equal(await card.getAttribute('data-state'), 'Active');
  // The block timeline and facts come from the endpoint's status report, collected by the service.
  await page.waitForSelector('section.endpoint[data-endpoint-name="alice-ep"] tr.block[data-block-id="0"][data-state="pending"]');
  aliceEp.report = report('running');
  await page.waitForSelector('section.endpoint[data-endpoint-name="alice-ep"] tr.block[data-block-id="0"][data-state="running"]');
  assert.match(await card.locator('.facts').innerText(), /host login-test/);
  assert.match(await card.locator('.decisions').innerText(), /submit 1 block/);
  assert.equal(await page.locator('section.endpoint').count(), 1);
  assert.equal(await page.locator('[data-endpoint-name="bob-ep"]').count(), 0);
  assert.ok(!(await page.content()).includes(bobEp.id), "bob's endpoint id is nowhere in the page");
  // Nor through the API with alice's session.
  const status = await page.evaluate(async (id) => (await fetch(`/ui/api/endpoints/${id}/history`)).status, bobEp.id);
  assert.equal(status, 404);
  await shot('endpoints');
});

test('the tasks/s chart follows completed tasks (server-sent events)', async () => {
  const rate = 'section.endpoint[data-endpoint-name="alice-ep"] .chart-rate';
  const before = Number(await page.getAttribute(rate, 'data-completed'));
  const points = Number(await page.getAttribute(rate, 'data-points'));
  const fn = await alice.sdk.registerFunction((x: number) => x + 1);
  const batch = alice.sdk.createBatch();
  for (let i = 0; i < 20; i++) batch.add(aliceEp.id, fn, i);
  const ids = await alice.sdk.batchRun(batch);
  await alice.sdk.getBatchResults(ids, { waitMs: 30_000 });
  await page.waitForFunction(([sel, n]) => Number(document.querySelector(sel as string)?.getAttribute('data-completed')) >= (n as number), [rate, before + 20] as const);
  assert.ok(Number(await page.getAttribute(rate, 'data-points')) > points, 'new samples were drawn');
  // uPlot drew it: a canvas with the series legend.
  assert.equal(await page.locator(`${rate} canvas`).count(), 1);
  assert.match(await page.locator(`${rate} .u-legend`).innerText(), /completed/);
  await shot('chart');
});

test('a failed task shows its transitions and the remote error', async () => {
  const fn = await alice.sdk.registerFunction(function explode() {
    throw new RangeError('the remote side exploded');
  });
  const id = await alice.sdk.run(aliceEp.id, fn);
  await alice.sdk.getBatchResults([id], { waitMs: 30_000 });
  await page.click('nav button[data-tab="Tasks"]');
  await page.fill('#task-search', id.slice(0, 8));
  await page.click('#task-search + select + button');
  await page.locator(`tr.task[data-task-id="${id}"][data-state="failed"]`).click();
  const error = page.locator(`#task-detail [data-task-id="${id}"] .task-error`);
  await error.waitFor();
  assert.match(await error.innerText(), /RangeError: the remote side exploded/);
  const transitions = await page.locator(`#task-detail .transitions tr`).allInnerTexts();
  assert.deepEqual(transitions.map((t) => t.split('\t')[0]), ['received', 'waiting-for-endpoint', 'waiting-for-nodes', 'running', 'failed']);
  await shot('failed-task');
});

test('state-changing requests without the CSRF token are refused; with it they work', async () => {
  const without = await page.evaluate(async () => {
    const r = await fetch('/ui/api/logout', { method: 'POST' });
    return { status: r.status, body: await r.text() };
  });
  assert.equal(without.status, 403);
  assert.match(without.body, /x-csrf-token/);
  const wrong = await page.evaluate(async () => (await fetch('/ui/api/logout', { method: 'POST', headers: { 'x-csrf-token': 'guess' } })).status);
  assert.equal(wrong, 403);
  // Still signed in: the refused requests changed nothing.
  assert.equal(await page.evaluate(async () => (await fetch('/ui/api/session')).status), 200);
  // A cross-site form post cannot sign anyone in either (not JSON).
  const form = await fetch(`${service.url}/ui/api/session`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${alice.token}` });
  assert.equal(form.status, 415);
  await page.click('#signout');
  await page.waitForSelector('#signin-error:text("Signed out.")');
  assert.equal(await page.evaluate(async () => (await fetch('/ui/api/endpoints')).status), 401);
  await shot('signed-out');
});
