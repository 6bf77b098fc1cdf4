/**
 * The function registry: a function is JavaScript source with an owner and an optional sharing group.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest, forbidden, notFound, userOf } from '../auth.js';
import { overFunctionRate } from '../limits.js';
import { quotasOf } from '../quotas.js';
import { bodyObject, functionFor, optionalString, requireString, type ServiceContext } from './context.js';
import type { FunctionView, RegisterFunctionResponse } from '../../protocol/http.js';

/** Largest function source accepted. */
export const MAX_SOURCE_CHARS = 1024 * 1024;

/**
 * Check that the source parses the way the worker compiles it (`return (SOURCE);`), so a broken function
 * fails at registration rather than on every task. `new Function` compiles without running anything.
 */
export function checkFunctionSource(source: string): void {
  try {
    new Function(`"use strict"; return (${source});`);
  } catch (err) {
    throw badRequest(`"source" is not a JavaScript function expression: ${(err as Error).message}`, 'INVALID_FUNCTION');
  }
}

/** The body's size as its Content-Length announces it, or undefined (none, or chunked). */
function announcedBytes(request: FastifyRequest): number | undefined {
  const header = request.headers['content-length'];
  const n = header === undefined ? NaN : Number(header);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/**
 * Take `bytes` from the user's registration bucket, or refuse with 429. Nothing is given back when the
 * registration fails later (a quota, a bad source): the body was received and parsed, which is what the rate bounds.
 */
function takeRegistrationBytes(ctx: ServiceContext, userId: string, bytes: number): void {
  // A body over the route's size limit is refused by its size (413) and costs nothing: charging it would
  // answer the next one 429, naming the wrong cause, and hold back a proper registration.
  if (bytes > ctx.limits.maxFunctionBodyBytes) return;
  const rate = ctx.functionRate.take(userId, bytes);
  if (!rate.ok) throw overFunctionRate(ctx.functionRate, bytes, rate);
}

export function functionRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const { store } = ctx;

  app.post('/v1/functions', {
    bodyLimit: ctx.limits.maxFunctionBodyBytes,
    // The rate is taken on the headers: a refused body is never buffered or parsed (Node reads and drops it).
    preParsing: async (request, _reply, payload) => {
      const bytes = announcedBytes(request);
      if (bytes !== undefined) takeRegistrationBytes(ctx, userOf(request).id, bytes);
      return payload;
    },
  }, async (request): Promise<RegisterFunctionResponse> => {
    const user = userOf(request);
    const body = bodyObject(request.body);
    const name = requireString(body, 'name', 200);
    const source = requireString(body, 'source', MAX_SOURCE_CHARS);
    // A chunked body announced no size: it pays by what it carried.
    if (announcedBytes(request) === undefined) takeRegistrationBytes(ctx, user.id, Buffer.byteLength(source) + Buffer.byteLength(name));
    checkFunctionSource(source);
    const groupRef = optionalString(body, 'group');
    let group: string | null = null;
    if (groupRef !== undefined) {
      const g = await store.group(groupRef);
      if (!g) throw notFound(`no group ${groupRef}`);
      if (!(await store.isGroupMember(g.id, user.id))) throw forbidden(`you are not a member of group ${g.name}, so you cannot share with it`);
      group = g.id;
    }
    const quotas = await quotasOf(store, ctx.quotas, user.id);
    const fn = await store.createFunction({ owner: user.id, name, source, group }, quotas.functions, quotas.functionBytes);
    return { functionId: fn.id };
  });

  /** Delete a function (owner only); tasks still queued for it fail with FunctionNotFound when delivered. */
  app.delete<{ Params: { id: string } }>('/v1/functions/:id', async (request) => {
    const user = userOf(request);
    const fn = await functionFor(store, user, request.params.id);
    if (fn.owner !== user.id) throw forbidden(`only the owner of function ${fn.id} can delete it`);
    await store.deleteFunction(fn.id);
    ctx.forwarders.forgetFunction(fn.id);
    return { functionId: fn.id, deleted: true };
  });

  app.get<{ Params: { id: string } }>('/v1/functions/:id', async (request): Promise<FunctionView> => {
    const fn = await functionFor(store, userOf(request), request.params.id);
    const [owner, group] = await Promise.all([store.userById(fn.owner), fn.group ? store.group(fn.group) : undefined]);
    return {
      functionId: fn.id,
      name: fn.name,
      owner: owner?.name ?? fn.owner,
      group: fn.group ? (group?.name ?? fn.group) : null,
      source: fn.source,
      createdAt: new Date(fn.createdAt).toISOString(),
    };
  });
}
