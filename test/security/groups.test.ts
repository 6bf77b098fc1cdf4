/**
 * Groups with consent: an owner invites, the invited user accepts or declines; members leave; owners remove
 * members. Nobody learns which user or group names exist from the answers they get.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceError } from '../../src/sdk/client.js';
import { FakeEndpoint, removeFakeEndpointDirs } from '../helpers/fake-endpoint.js';
import { addUser, api, inProcessService } from './harness.js';

test.after(() => removeFakeEndpointDirs());

async function status(call: Promise<unknown>, expected: number, what: string): Promise<void> {
  await assert.rejects(call, (err: unknown) => {
    assert.ok(err instanceof ServiceError, `${what}: expected a ServiceError, got ${String(err)}`);
    assert.equal(err.status, expected, `${what}: ${err.message}`);
    return true;
  });
}

test('an invited user is a member only once she accepts; members leave; owners remove; no name probing', async (t) => {
  const s = await inProcessService(t);
  const alice = await addUser(s, 'alice');
  const carol = await addUser(s, 'carol');
  const bob = await addUser(s, 'bob');
  const ec = await FakeEndpoint.start(s.url, carol.token, { name: 'carol-ep' });
  t.after(() => ec.close());
  await alice.sdk.createGroup('lab');
  const shared = await alice.sdk.registerFunction((x: number) => x + 100, { name: 'shared', group: 'lab' });

  // Invited, not yet a member.
  await alice.sdk.addGroupMember('lab', 'carol');
  assert.deepEqual((await carol.sdk.whoami()).groups, []);
  await status(carol.sdk.run(ec.id, shared, 1), 403, 'carol runs the shared function before accepting');
  const invitations = await carol.sdk.listInvitations();
  assert.deepEqual(invitations.map((i) => [i.name, i.owner]), [['lab', 'alice']]);

  // Accepted: a member, who sees who owns the group.
  await carol.sdk.acceptInvitation(invitations[0].groupId);
  const me = await carol.sdk.whoami();
  assert.deepEqual(me.groups, ['lab']);
  assert.deepEqual(me.memberships.map((m) => [m.name, m.owner]), [['lab', 'alice']]);
  assert.equal(await carol.sdk.getResult(await carol.sdk.run(ec.id, shared, 1), { waitMs: 30_000 }), 101);

  // A non-member asking about the group hears the same as about a group that does not exist.
  for (const [method, path, body] of [
    ['POST', '/v1/groups/%s/members', { user: 'bob' }],
    ['DELETE', '/v1/groups/%s'],
    ['POST', '/v1/groups/%s/accept'],
  ] as Array<[string, string, unknown?]>) {
    const a = await api(s.url, bob.token, method, path.replace('%s', 'lab'), body);
    const b = await api(s.url, bob.token, method, path.replace('%s', 'no-such-group'), body);
    assert.equal(a.status, b.status, `${method} ${path}: ${JSON.stringify(a.body)} vs ${JSON.stringify(b.body)}`);
    assert.ok(a.status >= 400, `${method} ${path} as a non-member: ${a.status}`);
  }
  const probeExisting = await api(s.url, bob.token, 'POST', '/v1/groups/lab/leave');
  const probeMissing = await api(s.url, bob.token, 'POST', '/v1/groups/no-such-group/leave');
  assert.equal(probeExisting.status, probeMissing.status);
  assert.equal(String(probeExisting.body.message).replace('lab', 'X'), String(probeMissing.body.message).replace('no-such-group', 'X'));

  // Inviting a user who does not exist answers as inviting one who does.
  const real = await api(s.url, alice.token, 'POST', '/v1/groups/lab/members', { user: 'bob' });
  const ghost = await api(s.url, alice.token, 'POST', '/v1/groups/lab/members', { user: 'nobody-by-this-name' });
  assert.equal(real.status, ghost.status);
  assert.deepEqual(Object.keys(real.body).sort(), Object.keys(ghost.body).sort());
  assert.equal(String(ghost.body.message ?? '').includes('no user'), false);

  // Bob declines his invitation: not a member.
  const bobInvites = await bob.sdk.listInvitations();
  assert.equal(bobInvites.length, 1);
  await bob.sdk.declineInvitation(bobInvites[0].groupId);
  assert.deepEqual(await bob.sdk.listInvitations(), []);
  await status(bob.sdk.acceptInvitation(bobInvites[0].groupId), 404, 'accepting a declined invitation');
  assert.deepEqual((await bob.sdk.whoami()).groups, []);

  // Carol leaves; invited again and accepted, the owner removes her.
  await carol.sdk.leaveGroup('lab');
  await status(carol.sdk.run(ec.id, shared, 2), 403, 'carol runs the function after leaving');
  await alice.sdk.addGroupMember('lab', 'carol');
  await carol.sdk.acceptInvitation('lab');
  assert.equal(await carol.sdk.getResult(await carol.sdk.run(ec.id, shared, 3), { waitMs: 30_000 }), 103);
  await status(carol.sdk.removeGroupMember('lab', 'alice'), 403, 'a member removes the owner');
  await alice.sdk.removeGroupMember('lab', 'carol');
  await status(carol.sdk.run(ec.id, shared, 4), 403, 'carol runs the function after being removed');
  assert.deepEqual((await carol.sdk.whoami()).groups, []);
});
