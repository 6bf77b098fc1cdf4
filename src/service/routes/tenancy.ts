/**
 * What a user may manage of their own tenancy: named API tokens (create, list, revoke), their quotas with
 * what they use of each, and deleting finished tasks (which frees the stored result bytes quota).
 *
 *   POST   /v1/tokens {name, expires?: "30d"} → {name, token, expiresAt}   (the token is shown once)
 *   GET    /v1/tokens                          → {tokens: [{name, createdAt, expiresAt, expired}]}
 *   DELETE /v1/tokens/:name                    → {name, revoked: true}; open long-polls with it end (401)
 *   GET    /v1/quotas                          → {quotas, usage}
 *   DELETE /v1/tasks/:id                       → {taskId, deleted: true} (finished tasks only; 409 otherwise)
 */
import type { FastifyInstance } from 'fastify';
import { badRequest, HttpError, notFound, userOf } from '../auth.js';
import { parseDuration } from '../durations.js';
import { quotasOf } from '../quotas.js';
import type { ApiToken } from '../store/index.js';
import { bodyObject, isFinished, optionalString, requireString, taskFor, type ServiceContext } from './context.js';

/** Token names: what a person would type, no spaces. */
const TOKEN_NAME = /^[A-Za-z0-9._@-]{1,100}$/;

export function tokenView(t: ApiToken, now = Date.now()) {
  return {
    name: t.name,
    createdAt: new Date(t.createdAt).toISOString(),
    expiresAt: t.expiresAt === null ? null : new Date(t.expiresAt).toISOString(),
    expired: t.expiresAt !== null && t.expiresAt <= now,
  };
}

export function tenancyRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const { store } = ctx;

  app.post('/v1/tokens', async (request) => {
    const user = userOf(request);
    const body = bodyObject(request.body);
    const name = requireString(body, 'name', 100);
    if (!TOKEN_NAME.test(name)) throw badRequest('"name" may only use letters, digits, ".", "_", "@" and "-"');
    const expires = optionalString(body, 'expires', 20);
    let expiresAt: number | null = null;
    if (expires !== undefined) {
      try {
        expiresAt = Date.now() + parseDuration(expires, '"expires"');
      } catch (err) {
        throw badRequest((err as Error).message);
      }
    }
    const created = await store.createApiToken(user.id, name, expiresAt);
    if (!created) throw new HttpError(409, 'CONFLICT', `you have a token named ${name} already: revoke it first, or choose another name`);
    ctx.log.info(`user ${user.name} created token ${name}${expiresAt ? ` (expires ${new Date(expiresAt).toISOString()})` : ''}`);
    return { ...tokenView(created.record), token: created.token };
  });

  app.get('/v1/tokens', async (request) => {
    const user = userOf(request);
    const now = Date.now();
    return { tokens: (await store.apiTokens(user.id)).map((t) => tokenView(t, now)) };
  });

  app.delete<{ Params: { name: string } }>('/v1/tokens/:name', async (request) => {
    const user = userOf(request);
    if (!(await store.revokeApiToken(user.id, request.params.name))) throw notFound(`you have no token named ${request.params.name}`);
    ctx.log.info(`user ${user.name} revoked token ${request.params.name}`);
    ctx.tokenWatch?.changed();
    await ctx.tokenWatch?.checkNow();
    return { name: request.params.name, revoked: true };
  });

  app.get('/v1/quotas', async (request) => {
    const user = userOf(request);
    const [quotas, usage] = await Promise.all([quotasOf(store, ctx.quotas, user.id), store.usage(user.id)]);
    return { quotas, usage };
  });

  app.delete<{ Params: { id: string } }>('/v1/tasks/:id', async (request) => {
    const user = userOf(request);
    const task = await taskFor(store, user, request.params.id);
    if (!isFinished(task)) throw new HttpError(409, 'TASK_NOT_FINISHED', `task ${task.id} is ${task.state}: only finished tasks can be deleted`);
    const deleted = await store.deleteFinishedTasks(user.id, [task.id]);
    if (deleted.length === 0) throw notFound(`no task ${task.id}`);
    return { taskId: task.id, deleted: true };
  });
}
