/**
 * Named API tokens with an optional expiry: `funcx-service token create/list/revoke` and the same for a
 * user's own tokens over HTTP. Only hashes are stored; a revoked or expired token is refused at once, and an
 * open long-poll holding it ends with 401 (not with the result, and not only when its wait is over).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RunningService } from '../../src/service/api.js';
import { PgStore, SqliteStore } from '../../src/service/store/index.js';
import { FakeEndpoint, removeFakeEndpointDirs } from '../helpers/fake-endpoint.js';
import { until } from '../helpers/wait.js';
import { addUser, api, inProcessService, runCli, type TestUser } from './harness.js';

test.after(() => removeFakeEndpointDirs());

async function endpoint(t: TestContext, s: RunningService, user: TestUser): Promise<FakeEndpoint> {
  const ep = await FakeEndpoint.start(s.url, user.token, { name: `${user.name}-ep`, hold: true });
  t.after(() => ep.close());
  return ep;
}

/** `funcx-service ARGS --database DB` against the running service's database. */
async function serviceCli(s: RunningService, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const db = s.store instanceof SqliteStore ? s.store.path : (s.store as PgStore).url;
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FUNCX_')) env[k] = v;
  return runCli('service', [...args, '--database', db], env);
}

/** A task of `user` held (never answered) by their endpoint, and a long-poll on it with `token`. */
async function waitingLongPoll(t: TestContext, s: RunningService, user: TestUser, token: string) {
  const ep = await endpoint(t, s, user);
  const fn = await user.sdk.registerFunction((x: number) => x, { name: 'id' });
  const task = await user.sdk.run(ep.id, fn, 1);
  await until('the endpoint holds the task', () => ep.heldTasks.length === 1);
  const before = s.waiters.size;
  const startedAt = Date.now();
  const poll = api(s.url, token, 'GET', `/v1/tasks/${task}?wait=50`);
  await until('the long-poll waits', () => s.waiters.size === before + 1);
  return { poll, startedAt, ep, task };
}

test('funcx-service token create/list/revoke: hashed, named, and a revoked token ends an open long-poll', async (t) => {
  const s = await inProcessService(t);
  const alice = await addUser(s, 'alice');
  const created = await serviceCli(s, ['token', 'create', '--user', 'alice', '--name', 'laptop']);
  const token = /fx_[A-Za-z0-9_-]+/.exec(created.stdout)?.[0];
  assert.ok(token, `a token is printed: ${created.stdout}`);
  assert.match(created.stderr, /printed once/);
  assert.equal((await api(s.url, token, 'GET', '/v1/whoami')).body.name, 'alice');
  await assert.rejects(serviceCli(s, ['token', 'create', '--user', 'alice', '--name', 'laptop']), /has a token named laptop already/);
  await assert.rejects(serviceCli(s, ['token', 'create', '--user', 'alice', '--name', 'bad name']), /may only use letters/);
  await assert.rejects(serviceCli(s, ['token', 'create', '--user', 'alice', '--name', 'x', '--expires', '30 days']), /--expires must be a whole number > 0 and a unit/);

  // Only the hash is kept: not the token in the database file.
  if (s.store instanceof SqliteStore) {
    s.store.db.pragma('wal_checkpoint(TRUNCATE)');
    const file = readFileSync(s.store.path);
    assert.equal(file.includes(token), false, 'the token is not in the database');
    assert.equal(file.includes(createHash('sha256').update(token).digest('hex')), true, 'its SHA-256 is');
  }
  const listed = JSON.parse((await serviceCli(s, ['token', 'list', '--user', 'alice', '--json'])).stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(listed.map((x) => [x.name, x.expiresAt, x.expired]), [['laptop', null, false]]);
  assert.equal(JSON.stringify(listed).includes(token), false, 'list never shows a token');

  const { poll, startedAt, ep } = await waitingLongPoll(t, s, alice, token);
  await serviceCli(s, ['token', 'revoke', '--user', 'alice', '--name', 'laptop']);
  const answer = await poll;
  assert.equal(answer.status, 401, `the long-poll of the revoked token: ${JSON.stringify(answer.body)}`);
  assert.equal(ep.heldTasks.length, 1, 'it ended while the task was still running');
  assert.ok(Date.now() - startedAt < 45_000, 'it ended long before its wait was over');
  assert.equal((await api(s.url, token, 'GET', '/v1/whoami')).status, 401, 'the revoked token is refused');
  assert.equal((await alice.sdk.whoami()).name, 'alice', "the user's other tokens still work");
  await assert.rejects(serviceCli(s, ['token', 'revoke', '--user', 'alice', '--name', 'laptop']), /has no token named laptop/);
});

test('an expired token is refused, and an open long-poll holding it ends when it expires', async (t) => {
  const s = await inProcessService(t);
  const alice = await addUser(s, 'alice');
  const created = await api(s.url, alice.token, 'POST', '/v1/tokens', { name: 'short', expires: '3s' });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const token = String(created.body.token);
  const expiresAt = Date.parse(String(created.body.expiresAt));
  assert.ok(expiresAt > Date.now() && expiresAt <= Date.now() + 3000);
  assert.equal((await api(s.url, token, 'GET', '/v1/whoami')).status, 200, 'it works before it expires');
  const { poll, ep } = await waitingLongPoll(t, s, alice, token);
  const answer = await poll;
  assert.equal(answer.status, 401, `the long-poll of the expired token: ${JSON.stringify(answer.body)}`);
  assert.ok(Date.now() >= expiresAt, 'not before it expired');
  assert.ok(Date.now() - expiresAt < 30_000, 'soon after it expired, not when its wait was over');
  assert.equal(ep.heldTasks.length, 1, 'the task was still running');
  assert.equal((await api(s.url, token, 'GET', '/v1/whoami')).status, 401);
  const listed = (await api(s.url, alice.token, 'GET', '/v1/tokens')).body.tokens as Array<Record<string, unknown>>;
  assert.deepEqual(listed.map((x) => [x.name, x.expired]), [['short', true]]);
  assert.equal(JSON.stringify(listed).includes(token), false);
});

test("a user revokes their own token over HTTP; nobody else's; a disabled user's named tokens are refused too", async (t) => {
  const s = await inProcessService(t);
  const alice = await addUser(s, 'alice');
  const bob = await addUser(s, 'bob');
  const ci = String((await api(s.url, alice.token, 'POST', '/v1/tokens', { name: 'ci' })).body.token);
  assert.equal((await api(s.url, alice.token, 'POST', '/v1/tokens', { name: 'ci' })).status, 409);
  assert.equal((await api(s.url, alice.token, 'POST', '/v1/tokens', { name: 'x', expires: 'soon' })).status, 400);
  assert.equal((await api(s.url, bob.token, 'DELETE', '/v1/tokens/ci')).status, 404, "bob cannot revoke alice's token");
  assert.equal((await api(s.url, ci, 'GET', '/v1/whoami')).body.name, 'alice');

  const { poll } = await waitingLongPoll(t, s, alice, ci);
  assert.equal((await api(s.url, alice.token, 'DELETE', '/v1/tokens/ci')).status, 200);
  assert.equal((await poll).status, 401, 'the long-poll ended with the revocation');
  assert.equal((await api(s.url, ci, 'GET', '/v1/whoami')).status, 401);

  const other = String((await api(s.url, alice.token, 'POST', '/v1/tokens', { name: 'other' })).body.token);
  await s.store.setUserDisabled((await s.store.userByName('alice'))!.id, true);
  assert.equal((await api(s.url, other, 'GET', '/v1/whoami')).status, 401, "a disabled user's named token");
  await s.store.setUserDisabled((await s.store.userByName('alice'))!.id, false);
  assert.equal((await api(s.url, other, 'GET', '/v1/whoami')).status, 200);
  // Removing the user removes their tokens with them.
  await s.store.removeUser((await s.store.userByName('alice'))!.id);
  assert.equal((await api(s.url, other, 'GET', '/v1/whoami')).status, 401);
});
