/**
 * Quotas on groups and invitations (issue 11: one abuse run created 480 groups and sent 1,920 invitations
 * into honest users' inboxes). Groups owned per user, invitations pending sent per user and invitations
 * pending in one user's inbox: past each, nothing written. Groups and invitations sent answer 429 naming the
 * quota, with Retry-After, alike whether the invited name exists or not. An invitation that does not fit an
 * inbox (its quota, or `invitesPerSender` from one owner) is dropped with the answer of one that was sent:
 * a 429 there would confirm that the name is a user's. Owners withdraw invitations.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunningService } from '../../src/service/api.js';
import { PgStore, SqliteStore } from '../../src/service/store/index.js';
import { addUser, api, inProcessService, runCli, type TestUser } from './harness.js';

type Reply = Awaited<ReturnType<typeof api>>;

async function serviceCli(s: RunningService, args: string[]): Promise<string> {
  const db = s.store instanceof SqliteStore ? s.store.path : (s.store as PgStore).url;
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FUNCX_')) env[k] = v;
  return (await runCli('service', [...args, '--database', db], env)).stdout;
}

const createGroup = (s: RunningService, u: TestUser, name: string) => api(s.url, u.token, 'POST', '/v1/groups', { name });
const invite = (s: RunningService, u: TestUser, group: string, user: string) => api(s.url, u.token, 'POST', `/v1/groups/${group}/members`, { user });
const inbox = async (s: RunningService, u: TestUser) => ((await api(s.url, u.token, 'GET', '/v1/invitations')).body.invitations as unknown[]).length;

function assertQuota(r: Reply, quota: string, used: number | undefined, limit: number | undefined, what: string): void {
  assert.equal(r.status, 429, `${what}: ${JSON.stringify(r.body)}`);
  assert.equal(r.body.code, 'QUOTA_EXCEEDED', what);
  assert.equal(r.body.quota, quota, what);
  assert.equal(r.body.used, used, what);
  assert.equal(r.body.limit, limit, what);
  assert.ok(Number(r.headers['retry-after']) >= 1, `${what}: Retry-After`);
}

test('group spam: one user creates at most their quota of groups, even all at once; deleting one frees it', async (t) => {
  const s = await inProcessService(t, { quotas: { groups: 3 } });
  const mallory = await addUser(s, 'mallory');
  const bob = await addUser(s, 'bob');

  const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => createGroup(s, mallory, `spam-${i}`)));
  const created = replies.filter((r) => r.status === 200);
  assert.equal(created.length, 3, `${created.length}/10 groups created past a quota of 3`);
  for (const r of replies.filter((x) => x.status !== 200)) assertQuota(r, 'groups', 3, 3, 'the 4th group');
  assert.match(String(replies.find((r) => r.status === 429)!.body.message), /over your quota of groups: 3 in use, 1 more asked, the limit is 3 \(delete some groups/);
  assert.equal(((await api(s.url, mallory.token, 'GET', '/v1/groups')).body.groups as unknown[]).length, 3, 'nothing of the refused ones was written');
  assert.deepEqual((await api(s.url, mallory.token, 'GET', '/v1/quotas')).body.usage, { tasks: 0, functions: 0, endpoints: 0, resultBytes: 0, groups: 3, invitations: 0, inbox: 0, functionBytes: 0 });

  assert.equal((await createGroup(s, bob, 'honest')).status, 200, "another user's groups are their own quota");
  assert.equal((await api(s.url, mallory.token, 'DELETE', `/v1/groups/${created[0].body.groupId as string}`)).status, 200);
  assert.equal((await createGroup(s, mallory, 'after-delete')).status, 200, 'deleting a group frees one');
  assertQuota(await createGroup(s, mallory, 'one-more'), 'groups', 3, 3, 'full again');
});

test('invitation spam: one user has at most their quota pending, across groups; the refusal does not tell whether the invited name exists', async (t) => {
  const s = await inProcessService(t, { quotas: { invitations: 5 } });
  const mallory = await addUser(s, 'mallory');
  const victims: TestUser[] = [];
  for (let i = 0; i < 20; i++) victims.push(await addUser(s, `user-${i}`));
  for (const g of ['g1', 'g2']) assert.equal((await createGroup(s, mallory, g)).status, 200);

  const replies = await Promise.all(victims.map((v, i) => invite(s, mallory, i % 2 ? 'g1' : 'g2', v.name)));
  const sent = replies.filter((r) => r.status === 200).length;
  let pending = 0;
  for (const v of victims) pending += await inbox(s, v);
  assert.equal(pending, 5, `${pending}/20 invitations pending past a quota of 5 (${sent} answered 200)`);
  assert.equal(sent, 5);
  for (const r of replies.filter((x) => x.status !== 200)) assertQuota(r, 'invitations', 5, 5, 'the 6th invitation');

  // At the quota, a name that exists and one that does not get the same answer.
  const notInvited = victims.filter((_, i) => replies[i].status !== 200);
  const real = await invite(s, mallory, 'g1', notInvited[0].name);
  const ghost = await invite(s, mallory, 'g1', 'nobody-by-this-name');
  assert.deepEqual([ghost.status, ghost.body], [real.status, real.body]);

  // An answer frees one.
  const invited = victims.find((_, i) => replies[i].status === 200)!;
  const [first] = (await api(s.url, invited.token, 'GET', '/v1/invitations')).body.invitations as Array<{ groupId: string }>;
  assert.equal((await api(s.url, invited.token, 'POST', `/v1/groups/${first.groupId}/decline`)).status, 200);
  assert.equal((await invite(s, mallory, 'g1', notInvited[0].name)).status, 200, 'a declined invitation frees one');
  assert.equal(await inbox(s, notInvited[0]), 1);
  assertQuota(await invite(s, mallory, 'g2', notInvited[1].name), 'invitations', 5, 5, 'full again');
});

test("inbox flood: several senders fill one user's inbox up to its quota; a full inbox answers as an unknown name does", async (t) => {
  const s = await inProcessService(t, { quotas: { inbox: 4 } });
  const victim = await addUser(s, 'victim');
  const senders: TestUser[] = [];
  for (let i = 0; i < 5; i++) {
    const u = await addUser(s, `sender-${i}`);
    senders.push(u);
    for (const g of ['a', 'b']) assert.equal((await createGroup(s, u, `${u.name}-${g}`)).status, 200);
  }

  const replies: Reply[] = [];
  for (const u of senders) for (const g of ['a', 'b']) replies.push(await invite(s, u, `${u.name}-${g}`, 'victim'));
  const held = await inbox(s, victim);
  assert.equal(held, 4, `${held}/10 invitations in one inbox past a quota of 4`);
  // The answers past the quota are those of a name that is no user's (was: 429 "the invited user's inbox is full").
  const ghost = await invite(s, senders[4], 'sender-4-a', 'nobody-by-this-name');
  for (const [i, r] of replies.entries()) {
    assert.equal(r.status, 200, `invitation ${i}: ${JSON.stringify(r.body)}`);
    assert.deepEqual(Object.keys(r.body).sort(), Object.keys(ghost.body).sort());
    assert.equal(r.headers['retry-after'], undefined);
  }

  // Another user's inbox is their own; the victim declining one frees room.
  const other = await addUser(s, 'other');
  assert.equal((await invite(s, senders[4], 'sender-4-a', other.name)).status, 200);
  assert.equal(await inbox(s, other), 1);
  const [first] = (await api(s.url, victim.token, 'GET', '/v1/invitations')).body.invitations as Array<{ groupId: string }>;
  assert.equal((await api(s.url, victim.token, 'POST', `/v1/groups/${first.groupId}/decline`)).status, 200);
  assert.equal((await invite(s, senders[4], 'sender-4-b', 'victim')).status, 200);
  assert.equal(await inbox(s, victim), 4);
  assert.ok(((await api(s.url, victim.token, 'GET', '/v1/invitations')).body.invitations as Array<{ owner: string }>).some((i) => i.owner === 'sender-4'));
});

test('one sender fills at most invitesPerSender of an inbox, whatever the inbox quota; others still reach it', async (t) => {
  const s = await inProcessService(t, { invitesPerSender: 3 });
  const mallory = await addUser(s, 'mallory');
  const victim = await addUser(s, 'victim');
  const bob = await addUser(s, 'bob');
  for (let i = 0; i < 8; i++) assert.equal((await createGroup(s, mallory, `m${i}`)).status, 200);
  for (let i = 0; i < 8; i++) assert.equal((await invite(s, mallory, `m${i}`, 'victim')).status, 200);
  const held = await inbox(s, victim);
  assert.equal(held, 3, `${held}/8 invitations from one sender in one inbox past a cap of 3`);
  assert.equal((await createGroup(s, bob, 'physics')).status, 200);
  assert.equal((await invite(s, bob, 'physics', 'victim')).status, 200);
  assert.equal(await inbox(s, victim), 4);
});

test('an owner withdraws an invitation; the answer is the same for a name never invited or no user at all', async (t) => {
  const s = await inProcessService(t);
  const alice = await addUser(s, 'alice');
  const bob = await addUser(s, 'bob');
  const carol = await addUser(s, 'carol');
  assert.equal((await createGroup(s, alice, 'lab')).status, 200);
  assert.equal((await invite(s, alice, 'lab', 'bob')).status, 200);
  assert.equal(await inbox(s, bob), 1);
  assert.equal((await api(s.url, carol.token, 'DELETE', '/v1/groups/lab/invitations/bob')).status, 403, 'only the owner withdraws');
  assert.equal(await inbox(s, bob), 1);
  const withdrawn = await api(s.url, alice.token, 'DELETE', '/v1/groups/lab/invitations/bob');
  assert.equal(withdrawn.status, 200);
  assert.equal(await inbox(s, bob), 0, 'the invitation is gone');
  const ghost = await api(s.url, alice.token, 'DELETE', '/v1/groups/lab/invitations/nobody');
  const never = await api(s.url, alice.token, 'DELETE', '/v1/groups/lab/invitations/carol');
  for (const r of [ghost, never]) assert.deepEqual([r.status, Object.keys(r.body).sort()], [withdrawn.status, Object.keys(withdrawn.body).sort()]);
  assert.equal((await api(s.url, bob.token, 'POST', '/v1/groups/lab/accept')).status, 404, 'a withdrawn invitation cannot be accepted');
});

test('funcx-service user quota --groups/--invitations/--inbox: one user\'s own quotas, shown with their use', async (t) => {
  const s = await inProcessService(t, { quotas: { groups: 1, invitations: 1, inbox: 1 } });
  const alice = await addUser(s, 'alice');
  const bob = await addUser(s, 'bob');
  const carol = await addUser(s, 'carol');
  const rows = Object.fromEntries((JSON.parse(await serviceCli(s, ['user', 'quota', 'alice', '--groups', '2', '--invitations', '2', '--json'])) as {
    quotas: Array<{ quota: string; limit: number; own: boolean; used: number }>;
  }).quotas.map((r) => [r.quota, r]));
  assert.deepEqual([rows.groups.limit, rows.groups.own, rows.invitations.limit, rows.inbox.own], [2, true, 2, false]);
  await serviceCli(s, ['user', 'quota', 'carol', '--inbox', '2']);

  for (const g of ['x', 'y']) assert.equal((await createGroup(s, alice, g)).status, 200);
  assertQuota(await createGroup(s, alice, 'z'), 'groups', 2, 2, "alice's own quota");
  assert.equal((await createGroup(s, bob, 'b')).status, 200);
  assertQuota(await createGroup(s, bob, 'b2'), 'groups', 1, 1, "bob has the service's");
  assert.equal((await invite(s, alice, 'x', 'carol')).status, 200);
  assert.equal((await invite(s, bob, 'b', 'carol')).status, 200, "carol's own inbox quota is 2");
  assert.equal((await invite(s, alice, 'y', 'carol')).status, 200, "carol's inbox is full: the invitation is dropped, and the answer does not say so");
  const shown = Object.fromEntries((JSON.parse(await serviceCli(s, ['user', 'quota', 'carol', '--json'])) as {
    quotas: Array<{ quota: string; used: number }>;
  }).quotas.map((r) => [r.quota, r.used]));
  assert.equal(shown.inbox, 2);
  assert.deepEqual((await api(s.url, alice.token, 'GET', '/v1/quotas')).body.usage, { tasks: 0, functions: 0, endpoints: 0, resultBytes: 0, groups: 2, invitations: 1, inbox: 0, functionBytes: 0 });
});
