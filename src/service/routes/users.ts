/**
 * Who am I, groups (create, add a member, list), and the unauthenticated health check.
 */
import type { FastifyInstance } from 'fastify';
import { PROTOCOL_VERSION } from '../../protocol/forwarder-messages.js';
import { forbidden, HttpError, notFound, userOf } from '../auth.js';
import { bodyObject, requireString, type ServiceContext } from './context.js';
import type { AddMemberResponse, CreateGroupResponse, GroupListResponse, HealthResponse, WhoamiResponse } from '../../protocol/http.js';

/** Paths answered without a token. */
export const PUBLIC_PATHS = ['/v1/health'] as const;

export function userRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const { store } = ctx;

  app.get('/v1/health', async (): Promise<HealthResponse> => ({ ok: true, protocol: PROTOCOL_VERSION, pid: process.pid }));

  app.get('/v1/whoami', async (request): Promise<WhoamiResponse> => {
    const user = userOf(request);
    return { userId: user.id, name: user.name, groups: (await store.groupsOf(user.id)).map((g) => g.name) };
  });

  app.post('/v1/groups', async (request): Promise<CreateGroupResponse> => {
    const user = userOf(request);
    const name = requireString(bodyObject(request.body), 'name', 100);
    if (await store.group(name)) throw new HttpError(409, 'CONFLICT', `a group named ${name} already exists`);
    const group = await store.createGroup(name, user.id);
    return { groupId: group.id, name: group.name };
  });

  app.get('/v1/groups', async (request): Promise<GroupListResponse> => {
    const user = userOf(request);
    const groups = await store.groupsOf(user.id);
    const owners = await Promise.all(groups.map((g) => store.userById(g.owner)));
    return {
      groups: groups.map((g, i) => ({ groupId: g.id, name: g.name, owner: owners[i]?.name ?? g.owner, members: g.members })),
    };
  });

  /** Add a user (by name) to a group; only the group's owner may. */
  app.post<{ Params: { id: string } }>('/v1/groups/:id/members', async (request): Promise<AddMemberResponse> => {
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
