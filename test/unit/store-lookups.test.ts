/**
 * The lookups PostgreSQL plans once (NAMED `generic` in pg-sql.ts), whose text was reshaped so each reads a
 * second table by a lookup per row, not a join: a named API token's user, and the groups a submission may use.
 * Same answers on both back ends.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { storeTest, STORE_BACKENDS } from '../helpers/store-backends.js';

const KEY = 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7';

for (const backend of STORE_BACKENDS) {
  const it = storeTest(backend);

  it('a named token finds its user until it expires, is revoked or the user is disabled', async (store) => {
    const { user: alice, token: own } = await store.createUser('alice');
    const { user: bob } = await store.createUser('bob');
    const ci = (await store.createApiToken(alice.id, 'ci', null))!;
    const old = (await store.createApiToken(alice.id, 'old', Date.now() - 1000))!;
    const bobs = (await store.createApiToken(bob.id, 'ci', Date.now() + 60_000))!;
    assert.equal((await store.userByToken(own))?.name, 'alice');
    assert.equal((await store.userByToken(ci.token))?.name, 'alice');
    assert.equal((await store.userByToken(bobs.token))?.name, 'bob');
    assert.equal(await store.userByToken(old.token), undefined, 'expired');
    assert.ok(await store.revokeApiToken(alice.id, 'ci'));
    assert.equal(await store.userByToken(ci.token), undefined, 'revoked');
    await store.setUserDisabled(bob.id, true);
    assert.equal(await store.userByToken(bobs.token), undefined, 'disabled user');
  });

  it('submissionContext: the groups of the endpoints and functions asked that the user owns or is a member of', async (store) => {
    const { user: alice } = await store.createUser('alice');
    const { user: bob } = await store.createUser('bob');
    const { user: carol } = await store.createUser('carol');
    const owned = await store.createGroup('owned', bob.id);
    const joined = await store.createGroup('joined', carol.id);
    const foreign = await store.createGroup('foreign', carol.id);
    await store.addGroupMember(owned.id, carol.id);
    await store.addGroupMember(joined.id, bob.id);
    const ep = (group: string | null) => store.saveEndpoint({ id: randomUUID(), name: 'ep', owner: alice.id, publicKey: KEY, group });
    const [e1, e2, e3] = [await ep(owned.id), await ep(foreign.id), await ep(null)];
    const f1 = await store.createFunction({ owner: alice.id, name: 'f', source: 'def f(): pass', group: joined.id });
    const f2 = await store.createFunction({ owner: alice.id, name: 'g', source: 'def g(): pass', group: null });

    const ctx = await store.submissionContext(bob.id, [e1.id, e2.id, e3.id, randomUUID()], [f1.id, f2.id]);
    assert.deepEqual([...ctx.groups].sort(), [owned.id, joined.id].sort());
    assert.deepEqual([...ctx.endpoints.keys()].sort(), [e1.id, e2.id, e3.id].sort());
    assert.deepEqual([...ctx.functions.keys()].sort(), [f1.id, f2.id].sort());
    assert.equal(ctx.endpoints.get(e1.id)?.group, owned.id);
    assert.equal(ctx.functions.get(f1.id)?.source, 'def f(): pass');
    assert.deepEqual([...(await store.submissionContext(carol.id, [e1.id, e2.id], [f1.id])).groups].sort(), [owned.id, joined.id, foreign.id].sort());
    assert.deepEqual([...(await store.submissionContext(alice.id, [e1.id, e2.id], [f1.id])).groups], []);
    assert.equal((await store.submissionContext(alice.id, [], [])).groups.size, 0);
  });

  it('isGroupMember: the owner and members, not others nor another group', async (store) => {
    const { user: alice } = await store.createUser('alice');
    const { user: bob } = await store.createUser('bob');
    const g = await store.createGroup('g', alice.id);
    const h = await store.createGroup('h', bob.id);
    await store.addGroupMember(h.id, alice.id);
    assert.equal(await store.isGroupMember(g.id, alice.id), true);
    assert.equal(await store.isGroupMember(g.id, bob.id), false);
    assert.equal(await store.isGroupMember(h.id, alice.id), true);
    assert.equal(await store.isGroupMember(randomUUID(), alice.id), false);
  });
}
