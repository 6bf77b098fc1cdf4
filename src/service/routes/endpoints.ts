/**
 * Endpoint registration (returns the forwarder's address, ports and key), listing, state, and the commands
 * the service can send an endpoint (status, stop).
 */
import type { FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { PROTOCOL_VERSION, protocolMismatchMessage } from '../../protocol/forwarder-messages.js';
import { isZ85Key } from '../../protocol/keys.js';
import { QuotaExceededError } from '../store/index.js';
import { quotasOf } from '../quotas.js';
import { badRequest, forbidden, HttpError, notFound, userOf } from '../auth.js';
import type { EndpointMetadata, EndpointSharing } from '../store/index.js';
import { endpointSharing } from '../sharing.js';
import { bodyObject, endpointFor, endpointView, isUuid, optionalString, requireString, type ServiceContext } from './context.js';
import type { EndpointDeleteResponse, EndpointListResponse, EndpointStatusResponse, EndpointStopResponse, EndpointView, RegisterEndpointResponse } from '../../protocol/http.js';

export function endpointRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const { store, forwarders } = ctx;

  app.post('/v1/endpoints', async (request): Promise<RegisterEndpointResponse> => {
    const user = userOf(request);
    const body = bodyObject(request.body);
    if (body.protocol !== PROTOCOL_VERSION) {
      throw badRequest(protocolMismatchMessage('endpoint', body.protocol ?? 'none', 'service'), 'PROTOCOL_MISMATCH');
    }
    const name = requireString(body, 'name', 100);
    if (!isZ85Key(body.publicKey)) throw badRequest('"publicKey" must be the endpoint\'s 40-character Z85 CURVE public key');
    const requestedId = optionalString(body, 'endpointId', 36);
    if (requestedId !== undefined && !isUuid(requestedId)) throw badRequest('"endpointId" must be a UUID');
    const groupRef = optionalString(body, 'group');
    let group: string | null = null;
    if (groupRef !== undefined) {
      const g = await store.group(groupRef);
      if (!g) throw notFound(`no group ${groupRef}`);
      if (!(await store.isGroupMember(g.id, user.id))) throw forbidden(`you are not a member of group ${g.name}`);
      group = g.id;
    }
    const metadata = withSharing(endpointMetadata(body.metadata), endpointSharing(body.sharing));
    const id = requestedId ?? randomUUID();
    const existing = await store.endpoint(id);
    if (existing && existing.owner !== user.id) {
      throw forbidden(`endpoint ${id} belongs to another user: only its owner can register or start it`);
    }
    // Ports first: a registration that gets no forwarder saves nothing. A new endpoint's quota is checked
    // before taking ports, and again in the transaction that saves it.
    const maxEndpoints = (await quotasOf(store, ctx.quotas, user.id)).endpoints;
    if (!existing) {
      const owned = (await store.endpointsFor(user.id)).filter((e) => e.owner === user.id).length;
      if (owned >= maxEndpoints) throw new QuotaExceededError('endpoints', owned, maxEndpoints, 1);
    }
    const forwarder = await forwarders.ensure({ id, publicKey: body.publicKey, ports: existing?.ports ?? null });
    try {
      await store.saveEndpoint({ id, name, owner: user.id, publicKey: body.publicKey, group, replica: forwarders.replicaId }, maxEndpoints);
      await store.setEndpointMetadata(id, metadata);
      await store.setEndpointPorts(id, forwarder.ports);
    } catch (err) {
      if (!existing) await forwarders.remove(id);
      throw err;
    }
    ctx.log.info(`endpoint ${id} (${name}) registered by ${user.name}`);
    return { endpointId: id, forwarder: forwarder.address(), protocol: PROTOCOL_VERSION };
  });

  /** Delete an endpoint (owner only): its forwarder closes, its unfinished tasks fail with EndpointDeleted. */
  app.delete<{ Params: { id: string } }>('/v1/endpoints/:id', async (request): Promise<EndpointDeleteResponse> => {
    const user = userOf(request);
    const endpoint = await endpointFor(store, user, request.params.id);
    if (endpoint.owner !== user.id) throw forbidden(`only the owner of endpoint ${endpoint.id} can delete it`);
    await forwarders.remove(endpoint.id);
    const failed = (await store.deleteEndpoint(endpoint.id)) ?? [];
    ctx.waiters.notify(failed);
    ctx.log.info(`endpoint ${endpoint.id} (${endpoint.name}) deleted by ${user.name}; ${failed.length} unfinished tasks failed`);
    return { endpointId: endpoint.id, deleted: true, failedTasks: failed.length };
  });

  app.get('/v1/endpoints', async (request): Promise<EndpointListResponse> => {
    const user = userOf(request);
    const endpoints = await store.endpointsFor(user.id);
    return { endpoints: await Promise.all(endpoints.map((e) => endpointView(store, e, forwarders.get(e.id)))) };
  });

  app.get<{ Params: { id: string } }>('/v1/endpoints/:id', async (request): Promise<EndpointView> => {
    const endpoint = await endpointFor(store, userOf(request), request.params.id);
    return endpointView(store, endpoint, forwarders.get(endpoint.id));
  });

  /** Ask the running endpoint for its own report (engine, managers, blocks, queue). Owner only. */
  app.get<{ Params: { id: string } }>('/v1/endpoints/:id/status', async (request): Promise<EndpointStatusResponse> => {
    const user = userOf(request);
    const endpoint = await endpointFor(store, user, request.params.id);
    if (endpoint.owner !== user.id) throw forbidden(`only the owner of endpoint ${endpoint.id} can ask for its status`);
    const reply = await commandOrThrow(ctx, endpoint.id, { name: 'status' });
    return { ...(await endpointView(store, endpoint, forwarders.get(endpoint.id))), report: reply.result ?? null };
  });

  /** Ask the running endpoint to stop. Owner only. */
  app.post<{ Params: { id: string } }>('/v1/endpoints/:id/stop', async (request): Promise<EndpointStopResponse> => {
    const user = userOf(request);
    const endpoint = await endpointFor(store, user, request.params.id);
    if (endpoint.owner !== user.id) throw forbidden(`only the owner of endpoint ${endpoint.id} can stop it`);
    const reply = await commandOrThrow(ctx, endpoint.id, { name: 'stop' });
    return { endpointId: endpoint.id, stopping: true, result: reply.result ?? null };
  });
}

/** The endpoint's `metadata` (the owner's username and email from its global options); null when not sent. */
function endpointMetadata(value: unknown): EndpointMetadata | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw badRequest('"metadata" must be an object {username, email}');
  const m = value as Record<string, unknown>;
  const text = (field: string, max: number): string => {
    const v = m[field] ?? '';
    if (typeof v !== 'string' || v.length > max) throw badRequest(`"metadata.${field}" must be a string of at most ${max} characters`);
    return v;
  };
  return { username: text('username', 100), email: text('email', 254) };
}

/** The sharing rules are stored with the metadata (one JSON column): the view shows only username and email. */
function withSharing(metadata: EndpointMetadata | null, sharing: EndpointSharing | null): EndpointMetadata | null {
  if (!sharing) return metadata;
  return { ...(metadata ?? { username: '', email: '' }), sharing };
}

async function commandOrThrow(ctx: ServiceContext, endpointId: string, command: { name: 'status' } | { name: 'stop' }) {
  const forwarder = ctx.forwarders.get(endpointId);
  if (!forwarder || forwarder.state !== 'Active') throw new HttpError(409, 'ENDPOINT_NOT_CONNECTED', `endpoint ${endpointId} is not connected`);
  const reply = await forwarder.command(command);
  if (!reply.ok) throw new HttpError(502, 'ENDPOINT_ERROR', `endpoint ${endpointId} could not ${command.name}: ${reply.error ?? 'no reason given'}`);
  return reply;
}
