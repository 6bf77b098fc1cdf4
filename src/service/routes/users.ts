/**
 * Who am I, groups (create, invite, withdraw, list; quotas on groups owned, invitations sent and the inbox;
 * invitations expire unanswered after `invitationDays`), and the unauthenticated health check.
 */
import type { FastifyInstance } from 'fastify';
import { PROTOCOL_VERSION } from '../../protocol/forwarder-messages.js';
import { forbidden, HttpError, notFound, userOf } from '../auth.js';
import { quotasOf } from '../quotas.js';
import { QuotaExceededError } from '../store/index.js';
import { bodyObject, requireString, type ServiceContext } from './context.js';
import type { AddMemberResponse, CreateGroupResponse, GroupListResponse, HealthResponse, WhoamiResponse } from '../../protocol/http.js';

/** Paths answered without a token. */
export const PUBLIC_PATHS = ['/v1/health'] as const;

/** Expired invitations are swept at most this often per replica: one may live this much past its days. */
const INVITATION_SWEEP_MS = 60_000;

export function userRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const { store } = ctx;
  let sweptAt = 0;
  /** Delete the invitations past their days (before any route reads or answers one). */
  const sweepInvitations = async (): Promise<void> => {
    const now = Date.now();
    if (now - sweptAt < INVITATION_SWEEP_MS) return;
    sweptAt = now;
    const expired = await store.expireInvitations(now - ctx.limits.invitationDays * 86_400_000);
    if (expired > 0) ctx.log.info(`${expired} invitations expired unanswered after ${ctx.limits.invitationDays} days`);
  };

  app.get('/v1/health', async (): Promise<HealthResponse> => ({ ok: true, protocol: PROTOCOL_VERSION, pid: process.pid }));

  app.get('/v1/whoami', async (request): Promise<WhoamiResponse> => {
    const user = userOf(request);
    const groups = await store.groupsOf(user.id);
    const owners = new Map<string, string>();
    for (const g of groups) if (!owners.has(g.owner)) owners.set(g.owner, (await store.userById(g.owner))?.name ?? g.owner);
    return {
      userId: user.id,
      name: user.name,
      groups: groups.map((g) => g.name),
      memberships: groups.map((g) => ({ groupId: g.id, name: g.name, owner: owners.get(g.owner)! })),
    };
  });

  app.post('/v1/groups', async (request): Promise<CreateGroupResponse> => {
    const user = userOf(request);
    const name = requireString(bodyObject(request.body), 'name', 100);
    if (await store.group(name)) throw new HttpError(409, 'CONFLICT', `a group named ${name} already exists`);
    const group = await store.createGroup(name, user.id, (await quotasOf(store, ctx.quotas, user.id)).groups);
    return { groupId: group.id, name: group.name };
  });

  /** A new token for the caller; the one this request used stops working at once. */
  app.post('/v1/tokens/rotate', async (request) => {
    const user = userOf(request);
    const token = await store.rotateToken(user.id);
    ctx.tokenWatch?.changed();
    ctx.log.info(`user ${user.name} rotated their token`);
    return { token };
  });

  /** Delete a group (owner only): members leave, and what was shared with it is no longer shared. */
  app.delete<{ Params: { id: string } }>('/v1/groups/:id', async (request) => {
    const user = userOf(request);
    const group = await store.group(request.params.id);
    // Unknown and not yours answer alike: the name of someone else's group is not confirmed.
    if (!group || group.owner !== user.id) throw forbidden(`you own no group ${request.params.id}: only a group's owner can delete it`);
    await store.deleteGroup(group.id);
    ctx.log.info(`group ${group.id} (${group.name}) deleted by ${user.name}`);
    return { groupId: group.id, deleted: true };
  });

  app.get('/v1/groups', async (request): Promise<GroupListResponse> => {
    const user = userOf(request);
    const groups = await store.groupsOf(user.id);
    const owners = await Promise.all(groups.map((g) => store.userById(g.owner)));
    return {
      groups: groups.map((g, i) => ({ groupId: g.id, name: g.name, owner: owners[i]?.name ?? g.owner, members: g.members })),
    };
  });

  /**
   * Invite a user (by name) to a group; only the group's owner may. The answer is the same whether or not
   * such a user exists, and whether or not their inbox had room (the inbox quota, and `invitesPerSender` from
   * one owner): an invitation that does not fit is dropped, so nobody learns user names from the answer.
   * The user becomes a member by accepting.
   */
  app.post<{ Params: { id: string } }>('/v1/groups/:id/members', async (request): Promise<AddMemberResponse> => {
    const user = userOf(request);
    const group = await ownedGroup(request.params.id, user.id, 'invite members');
    const memberName = requireString(bodyObject(request.body), 'user', 100);
    const member = await store.userByName(memberName);
    const invitee = member && member.id !== user.id && !(await store.isGroupMember(group.id, member.id)) ? member : undefined;
    // The sender's quota is checked whoever is named (a name that is no user included), so a refusal does
    // not tell whether the name is a user's; the inbox's only when an invitation would be written.
    const invitations = (await quotasOf(store, ctx.quotas, user.id)).invitations;
    const inbox = invitee ? (await quotasOf(store, ctx.quotas, invitee.id)).inbox : 0;
    await sweepInvitations();
    try {
      await store.inviteToGroup(group.id, invitee?.id ?? null, { invitations, inbox, perSender: ctx.limits.invitesPerSender });
    } catch (err) {
      // A full inbox answers as a sent invitation does: a 429 here would confirm that the name is a user's.
      if (!(err instanceof QuotaExceededError && err.quota === 'inbox')) throw err;
    }
    return { groupId: group.id, name: group.name, invited: memberName };
  });

  /** Withdraw an invitation (owner only); the answer is the same whether or not there was one, or such a user. */
  app.delete<{ Params: { id: string; user: string } }>('/v1/groups/:id/invitations/:user', async (request) => {
    const user = userOf(request);
    const group = await ownedGroup(request.params.id, user.id, 'withdraw invitations');
    const invitee = await store.userByName(request.params.user);
    if (invitee) await store.declineInvitation(group.id, invitee.id);
    return { groupId: group.id, name: group.name, withdrawn: request.params.user };
  });

  /** Remove a member (owner only). */
  app.delete<{ Params: { id: string; user: string } }>('/v1/groups/:id/members/:user', async (request) => {
    const user = userOf(request);
    const group = await ownedGroup(request.params.id, user.id, 'remove members');
    const member = await store.userByName(request.params.user);
    if (!member || !(await store.removeGroupMember(group.id, member.id))) throw notFound(`${request.params.user} is not a member of group ${group.name}`);
    ctx.log.info(`${member.name} removed from group ${group.name} by ${user.name}`);
    return { groupId: group.id, removed: member.name };
  });

  app.get('/v1/invitations', async (request) => {
    const user = userOf(request);
    await sweepInvitations();
    const invitations = await store.invitationsOf(user.id);
    return {
      invitations: await Promise.all(invitations.map(async (g) => ({ groupId: g.id, name: g.name, owner: (await store.userById(g.owner))?.name ?? g.owner }))),
    };
  });

  for (const answer of ['accept', 'decline'] as const) {
    app.post<{ Params: { id: string } }>(`/v1/groups/:id/${answer}`, async (request) => {
      const user = userOf(request);
      await sweepInvitations();
      const group = await store.group(request.params.id);
      const done = group !== undefined && (answer === 'accept' ? await store.acceptInvitation(group.id, user.id) : await store.declineInvitation(group.id, user.id));
      if (!done) throw notFound(`you have no invitation to group ${request.params.id}`);
      return { groupId: group!.id, name: group!.name, [answer === 'accept' ? 'joined' : 'declined']: true };
    });
  }

  /** Leave a group you are a member of (its owner deletes it instead). */
  app.post<{ Params: { id: string } }>('/v1/groups/:id/leave', async (request) => {
    const user = userOf(request);
    const group = await store.group(request.params.id);
    if (group && group.owner === user.id) {
      throw new HttpError(409, 'OWNER_CANNOT_LEAVE', `you own group ${group.name}: delete it instead (\`funcx group delete ${group.name}\`)`);
    }
    if (!group || !(await store.removeGroupMember(group.id, user.id))) throw notFound(`you are not a member of a group ${request.params.id}`);
    return { groupId: group.id, left: true };
  });

  /** The group `ref` if the user owns it; otherwise the same 403 whether it exists or not. */
  async function ownedGroup(ref: string, userId: string, what: string) {
    const group = await store.group(ref);
    if (!group || group.owner !== userId) throw forbidden(`you own no group ${ref}: only a group's owner can ${what}`);
    return group;
  }
}
