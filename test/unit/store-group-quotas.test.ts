/**
 * Quotas on groups owned, invitations sent and the inbox, in the store, on every back end
 * (test/helpers/store-backends.ts): checked in the transaction that writes, so writes racing each other
 * (PostgreSQL: many connections) still stop at the limit; nothing of a refused write is kept.
 */
import assert from 'node:assert/strict';
import { QuotaExceededError, type Store } from '../../src/service/store/index.js';
import { storeTest, STORE_BACKENDS } from '../helpers/store-backends.js';

/** How many of the calls succeeded; every other one must have been refused for `quota`. */
async function outcomes(calls: Array<Promise<unknown>>, quota: string): Promise<number> {
  const settled = await Promise.allSettled(calls);
  for (const s of settled) {
    if (s.status === 'rejected') {
      assert.ok(s.reason instanceof QuotaExceededError, `refused for another reason: ${String(s.reason)}`);
      assert.equal(s.reason.quota, quota);
    }
  }
  return settled.filter((s) => s.status === 'fulfilled').length;
}

for (const backend of STORE_BACKENDS) {
  const it = storeTest(backend);

  it('groups owned: ten created at once against a quota of 3 leave 3; deleting one frees it', async (store) => {
    const { user } = await store.createUser('mallory');
    const made = await outcomes(Array.from({ length: 10 }, (_, i) => store.createGroup(`g${i}`, user.id, 3)), 'groups');
    assert.equal(made, 3);
    assert.equal((await store.groupsOf(user.id)).length, 3);
    await assert.rejects(store.createGroup('more', user.id, 3), { quota: 'groups', used: 3, limit: 3, adding: 1 });
    await store.deleteGroup((await store.groupsOf(user.id))[0].id);
    await store.createGroup('more', user.id, 3);
    assert.equal((await store.usage(user.id)).groups, 3);
  });

  it('invitations sent: counted across the owner\'s groups, checked even when nothing would be written', async (store) => {
    const { user: owner } = await store.createUser('owner');
    const users = await Promise.all(Array.from({ length: 10 }, async (_, i) => (await store.createUser(`u${i}`)).user));
    const [g1, g2] = [await store.createGroup('g1', owner.id), await store.createGroup('g2', owner.id)];
    const quotas = { invitations: 4, inbox: 100 };
    const sent = await outcomes(users.map((u, i) => store.inviteToGroup(i % 2 ? g1.id : g2.id, u.id, quotas)), 'invitations');
    assert.equal(sent, 4);
    let pending = 0;
    for (const u of users) pending += (await store.invitationsOf(u.id)).length;
    assert.equal(pending, 4, 'nothing of the refused ones was written');
    assert.equal((await store.usage(owner.id)).invitations, 4);
    await assert.rejects(store.inviteToGroup(g1.id, null, quotas), { quota: 'invitations', used: 4, limit: 4 });

    const answered = [];
    for (const u of users) if ((await store.invitationsOf(u.id)).length > 0) answered.push(u);
    assert.ok(await store.acceptInvitation((await store.invitationsOf(answered[0].id))[0].id, answered[0].id));
    assert.ok(await store.declineInvitation((await store.invitationsOf(answered[1].id))[0].id, answered[1].id));
    await store.inviteToGroup(g1.id, null, quotas);
    assert.equal((await store.usage(owner.id)).invitations, 2, 'accepting and declining free the sender\'s quota');
    await store.deleteGroup(g1.id);
    await store.deleteGroup(g2.id);
    assert.equal((await store.usage(owner.id)).invitations, 0, "a deleted group's invitations go with it");
  });

  it('inbox: invitations from many owners at once stop at the quota; inviting again is a no-op, not a refusal', async (store) => {
    const { user: victim } = await store.createUser('victim');
    const groups = [];
    for (let i = 0; i < 6; i++) groups.push(await store.createGroup(`g${i}`, (await store.createUser(`owner${i}`)).user.id));
    const quotas = { invitations: 1_000, inbox: 2 };
    assert.equal(await outcomes(groups.map((g) => store.inviteToGroup(g.id, victim.id, quotas)), 'inbox'), 2);
    const held = await store.invitationsOf(victim.id);
    assert.equal(held.length, 2);
    assert.equal((await store.usage(victim.id)).inbox, 2);
    await store.inviteToGroup(held[0].id, victim.id, quotas);
    const other = groups.find((g) => !held.some((h) => h.id === g.id))!;
    await assert.rejects(store.inviteToGroup(other.id, victim.id, quotas), { quota: 'inbox', used: 2, limit: 2 });
    assert.ok(await store.acceptInvitation(held[0].id, victim.id));
    await store.inviteToGroup(held[0].id, victim.id, quotas);
    assert.equal((await store.invitationsOf(victim.id)).length, 1, 'a member is not invited again');
    await store.inviteToGroup(other.id, victim.id, quotas);
    assert.equal((await store.invitationsOf(victim.id)).length, 2);
  });

  it('perSender: one owner holds at most that many invitations in one inbox; other owners still fit', async (store) => {
    const { user: victim } = await store.createUser('victim');
    const { user: mallory } = await store.createUser('mallory');
    const { user: bob } = await store.createUser('bob');
    const groups = [];
    for (let i = 0; i < 5; i++) groups.push(await store.createGroup(`m${i}`, mallory.id));
    const quotas = { invitations: 1_000, inbox: 100, perSender: 2 };
    assert.equal(await outcomes(groups.map((g) => store.inviteToGroup(g.id, victim.id, quotas)), 'inbox'), 2);
    assert.equal((await store.invitationsOf(victim.id)).length, 2);
    await store.inviteToGroup((await store.createGroup('physics', bob.id)).id, victim.id, quotas);
    assert.equal((await store.invitationsOf(victim.id)).length, 3);
  });

  it('expireInvitations deletes those sent before the cut-off, and only those', async (store) => {
    const { user: owner } = await store.createUser('owner');
    const { user: bob } = await store.createUser('bob');
    const g = await store.createGroup('lab', owner.id);
    const before = Date.now();
    await store.inviteToGroup(g.id, bob.id);
    assert.equal(await store.expireInvitations(before - 60_000), 0);
    assert.equal((await store.invitationsOf(bob.id)).length, 1);
    assert.equal(await store.expireInvitations(Date.now() + 1), 1);
    assert.deepEqual(await store.invitationsOf(bob.id), []);
    assert.equal(await store.acceptInvitation(g.id, bob.id), false, 'an expired invitation cannot be accepted');
  });

  it('per-user overrides of the group quotas (migration 9) are kept and cleared', async (store) => {
    const { user } = await store.createUser('alice');
    await store.setQuotaOverrides(user.id, { groups: 5, invitations: 7, inbox: 0, tasks: 9 });
    assert.deepEqual(await store.quotaOverrides(user.id), { tasks: 9, groups: 5, invitations: 7, inbox: 0 });
    await store.setQuotaOverrides(user.id, { groups: null, inbox: null });
    assert.deepEqual(await store.quotaOverrides(user.id), { tasks: 9, invitations: 7 });
  });
}
