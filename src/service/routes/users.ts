/**
 * Who am I, groups (create, add a member, list), and the unauthenticated health check.
 */
import type { FastifyInstance } from 'fastify';
import { PROTOCOL_VERSION } from '../../protocol/forwarder-messages.js';
import { forbidden, HttpError, notFound, userOf } from '../auth.js';
import { bodyObject, requireString, type ServiceContext } from './context.js';

/** Paths answered without a token. */
export const PUBLIC_PATHS = ['/v1/health'] as const;

export function userRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const { store } = ctx;

  app.get('/v1/health', async () => ({ ok: true, protocol: PROTOCOL_VERSION, pid: process.pid }));

  app.get('/v1/whoami', async (request) => {
    const user = userOf(request);
    return { userId: user.id, name: user.name, groups: (await store.groupsOf(user.id)).map((g) => g.name) };
  });

  app.post('/v1/groups', async (request) => {
    const user = userOf(request);
    const name = requireString(bodyObject(request.body), 'name', 100);
    if (await store.group(name)) throw new HttpError(409, 'CONFLICT', `a group named ${name} already exists`);
    const group = await store.createGroup(name, user.id);
    return { groupId: group.id, name: group.name };
  });

  /** A new token for the caller; the one this request used stops working at once. */
  app.post('/v1/tokens/rotate', async (request) => {
    const user = userOf(request);
    const token = await store.rotateToken(user.id);
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

  app.get('/v1/groups', async (request) => {
    const user = userOf(request);
    const groups = await store.groupsOf(user.id);
    const owners = await Promise.all(groups.map((g) => store.userById(g.owner)));
    return {
      groups: groups.map((g, i) => ({ groupId: g.id, name: g.name, owner: owners[i]?.name ?? g.owner, members: g.members })),
    };
  });

  /** Add a user (by name) to a group; only the group's owner may. */
  app.post<{ Params: { id: string } }>('/v1/groups/:id/members', async (request) => {
    const user = userOf(request);
    const group = await store.group(request.params.id);
    if (!group) throw notFound(`no group ${request.params.id}`);
    if (group.owner !== user.id) throw forbidden(`only the owner of group ${group.name} can add members`);
    const memberName = requireString(bodyObject(request.body), 'user', 100);
    const member = await store.userByName(memberName);
    if (!member) throw notFound(`no user named ${memberName}`);
    await store.addGroupMember(group.id, member.id);
    return { groupId: group.id, name: group.name, added: member.name };
  });
}
