/**
 * The dashboard's access rules over plain HTTP against the real service: a session sees only its user's
 * endpoints (a shared endpoint without its owner's report), tasks and live events; sign-in needs JSON from
 * the same origin; state changes need the CSRF token; the session cookie never carries the token.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startService, type RunningService } from '../../src/service/api.js';
import { FuncXClient } from '../../src/sdk/client.js';
import { silentLogger } from '../../src/logger.js';
import { FakeEndpoint, removeFakeEndpointDirs } from '../helpers/fake-endpoint.js';
import { until } from '../helpers/wait.js';
import { databaseFor, dropTestDatabases } from '../helpers/store-backends.js';
import { newKeyPair } from '../../src/protocol/keys.js';
import { PROTOCOL_VERSION } from '../../src/protocol/forwarder-messages.js';

let tmp = '';
let s: RunningService;
const users: Record<string, { token: string; sdk: FuncXClient }> = {};
const eps: Record<string, FakeEndpoint> = {};

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'funcx-dashboard-sec-'));
  process.env.FUNCX_DASHBOARD_PERIOD_MS = '200';
  const home = join(tmp, 'service');
  s = await startService({ home, database: await databaseFor(home), port: 0, heartbeatPeriodMs: 100, heartbeatThresholdMs: 3000, log: silentLogger });
  delete process.env.FUNCX_DASHBOARD_PERIOD_MS;
  for (const name of ['alice', 'bob', 'carol']) {
    const { token } = await s.store.createUser(name);
    users[name] = { token, sdk: new FuncXClient({ serviceUrl: s.url, token }) };
  }
  // carol shares her endpoint with bob through a group; alice's is hers alone.
  await users.carol.sdk.createGroup('lab');
  await users.carol.sdk.addGroupMember('lab', 'bob');
  await users.bob.sdk.acceptInvitation('lab');
  eps.alice = await FakeEndpoint.start(s.url, users.alice.token, { name: 'alice-ep' });
  eps.alice.report = { backlog: 7, blocks: [], managers: [] };
  eps.bob = await FakeEndpoint.start(s.url, users.bob.token, { name: 'bob-ep' });
  // carol registers hers in the group (it need not connect to be listed).
  const r = await fetch(`${s.url}/v1/endpoints`, {
    method: 'POST', headers: { authorization: `Bearer ${users.carol.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'carol-ep', publicKey: newKeyPair().publicKey, protocol: PROTOCOL_VERSION, group: 'lab' }),
  });
  assert.equal(r.status, 200, await r.text());
});

after(async () => {
  for (const ep of Object.values(eps)) await ep.close();
  await s.close();
  await dropTestDatabases();
  removeFakeEndpointDirs();
  rmSync(tmp, { recursive: true, force: true });
});

async function signIn(name: string): Promise<{ cookie: string; csrf: string }> {
  const r = await fetch(`${s.url}/ui/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: users[name].token }) });
  assert.equal(r.status, 200);
  const setCookie = r.headers.get('set-cookie') ?? '';
  assert.match(setCookie, /^funcx_session=[A-Za-z0-9_-]{40,}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
  assert.ok(!setCookie.includes(users[name].token));
  const { csrf } = (await r.json()) as { csrf: string };
  return { cookie: setCookie.split(';')[0], csrf };
}

const get = (path: string, cookie: string) => fetch(`${s.url}${path}`, { headers: { cookie } });

test("a session lists only its user's endpoints; a shared one comes without its owner's report", async () => {
  const bob = await signIn('bob');
  await until('bob sees a report of his own endpoint', async () => {
    const { endpoints } = (await (await get('/ui/api/endpoints', bob.cookie)).json()) as { endpoints: Array<{ name: string; report: unknown }> };
    return endpoints.find((e) => e.name === 'bob-ep')?.report != null;
  });
  const { endpoints } = (await (await get('/ui/api/endpoints', bob.cookie)).json()) as { endpoints: Array<{ name: string; mine: boolean; report: unknown; blocks: unknown[] }> };
  assert.deepEqual(endpoints.map((e) => e.name).sort(), ['bob-ep', 'carol-ep']);
  const carol = endpoints.find((e) => e.name === 'carol-ep')!;
  assert.equal(carol.mine, false);
  assert.equal(carol.report, null);
  assert.equal((await get(`/ui/api/endpoints/${eps.alice.id}/history`, bob.cookie)).status, 404);
  assert.equal((await get('/ui/api/endpoints', 'funcx_session=forged')).status, 401);
  // The API's bearer token does not open the dashboard's API, nor the cookie the bearer API.
  assert.equal((await fetch(`${s.url}/ui/api/endpoints`, { headers: { authorization: `Bearer ${users.bob.token}` } })).status, 401);
  assert.equal((await get('/v1/endpoints', bob.cookie)).status, 401);
});

test("live events carry only the session's endpoints", async () => {
  const bob = await signIn('bob');
  const abort = new AbortController();
  const r = await fetch(`${s.url}/ui/api/events`, { headers: { cookie: bob.cookie }, signal: abort.signal });
  assert.equal(r.headers.get('content-type'), 'text/event-stream');
  const seen = new Map<string, number>();
  let text = '';
  const reader = (async () => {
    for await (const chunk of r.body!) {
      text += Buffer.from(chunk as Uint8Array).toString();
      let i: number;
      while ((i = text.indexOf('\n\n')) >= 0) {
        const block = text.slice(0, i);
        text = text.slice(i + 2);
        const data = /^data: (.*)$/m.exec(block);
        if (data) {
          const name = (JSON.parse(data[1]) as { endpoint: { name: string } }).endpoint.name;
          seen.set(name, (seen.get(name) ?? 0) + 1);
        }
      }
    }
  })().catch(() => {});
  // Wait for several rounds of bob's own endpoint: alice's endpoint was sampled in each of them too.
  await until('five samples of bob-ep', () => (seen.get('bob-ep') ?? 0) >= 5);
  abort.abort();
  await reader;
  assert.equal(seen.get('alice-ep'), undefined, `events seen: ${JSON.stringify([...seen])}`);
});

test("tasks: a session finds and opens only its user's tasks", async () => {
  const fn = await users.alice.sdk.registerFunction(() => 'secret value');
  const id = await users.alice.sdk.run(eps.alice.id, fn);
  await users.alice.sdk.getBatchResults([id], { waitMs: 30_000 });
  const alice = await signIn('alice');
  const bob = await signIn('bob');
  const mine = (await (await get(`/ui/api/tasks?q=${id.slice(0, 8)}`, alice.cookie)).json()) as { tasks: Array<{ taskId: string }> };
  assert.deepEqual(mine.tasks.map((t) => t.taskId), [id]);
  const detail = (await (await get(`/ui/api/tasks/${id}`, alice.cookie)).json()) as { value: unknown };
  assert.equal(detail.value, 'secret value');
  const theirs = (await (await get(`/ui/api/tasks?q=${id.slice(0, 8)}`, bob.cookie)).json()) as { tasks: unknown[] };
  assert.deepEqual(theirs.tasks, []);
  assert.equal((await get(`/ui/api/tasks/${id}`, bob.cookie)).status, 404);
  // LIKE wildcards in the search are taken literally.
  assert.deepEqual(((await (await get('/ui/api/tasks?q=%25', alice.cookie)).json()) as { tasks: unknown[] }).tasks, []);
});

test('CSRF: sign-in only as JSON from this origin; sign-out only with the session CSRF token', async () => {
  const form = await fetch(`${s.url}/ui/api/session`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ token: users.alice.token }) });
  assert.equal(form.status, 415);
  const foreign = await fetch(`${s.url}/ui/api/session`, { method: 'POST', headers: { 'content-type': 'application/json', origin: 'http://evil.example' }, body: JSON.stringify({ token: users.alice.token }) });
  assert.equal(foreign.status, 403);
  const alice = await signIn('alice');
  const post = (headers: Record<string, string>) => fetch(`${s.url}/ui/api/logout`, { method: 'POST', headers: { cookie: alice.cookie, ...headers } });
  assert.equal((await post({})).status, 403);
  assert.equal((await post({ 'x-csrf-token': 'x'.repeat(alice.csrf.length) })).status, 403);
  assert.equal((await post({ 'x-csrf-token': alice.csrf, origin: 'http://evil.example' })).status, 403);
  assert.equal((await get('/ui/api/session', alice.cookie)).status, 200, 'still signed in');
  const out = await post({ 'x-csrf-token': alice.csrf });
  assert.equal(out.status, 200);
  assert.match(out.headers.get('set-cookie') ?? '', /Max-Age=0/);
  assert.equal((await get('/ui/api/session', alice.cookie)).status, 401, 'the session is gone on the server');
});

test('the page is served with a strict content security policy', async () => {
  const r = await fetch(`${s.url}/`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-security-policy') ?? '', /default-src 'self'.*frame-ancestors 'none'/);
  assert.match(await r.text(), /<script type="module" src="\/ui\/app.js">/);
  assert.equal((await fetch(`${s.url}/ui/app.js`)).headers.get('content-type'), 'text/javascript; charset=utf-8');
});
