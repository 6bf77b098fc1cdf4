/**
 * The dashboard's JSON API under /ui/api (cookie sessions, see session.ts) and its live feed
 * (GET /ui/api/events, server-sent events). Read-only except sign-in and sign-out. A user sees the endpoints
 * they own or share through a group; the endpoint's own report (blocks, managers, decisions) only when they
 * own it, as with GET /v1/endpoints/:id/status.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decodeOutcome } from '../../protocol/payload.js';
import type { EndpointRecord, TaskState, User } from '../store/index.js';
import { HttpError } from '../auth.js';
import { isUuid, mayUseEndpoint, type ServiceContext } from '../routes/context.js';
import type { StatusCollector } from './collector.js';
import { functionsFor, searchTasks } from './queries.js';
import { clearedCookie, CSRF_HEADER, parseCookies, sameSecret, SESSION_COOKIE, sessionCookie, type Session, type Sessions } from './session.js';

/** Results up to this size are decoded and shown; bigger ones only by size. */
const SMALL_RESULT_BYTES = 64 * 1024;
const STATES = new Set<TaskState>(['received', 'waiting-for-endpoint', 'waiting-for-nodes', 'running', 'success', 'failed']);

export interface DashboardDeps {
  ctx: ServiceContext;
  sessions: Sessions;
  collector: StatusCollector;
}

declare module 'fastify' {
  interface FastifyRequest {
    dashboardSession?: Session;
  }
}

function unauthorized(): HttpError {
  return new HttpError(401, 'UNAUTHORIZED', 'not signed in to the dashboard (paste your token on the sign-in page)');
}

export function dashboardRoutes(app: FastifyInstance, d: DashboardDeps): void {
  const { ctx, sessions, collector } = d;
  const { store } = ctx;

  const sessionOf = async (request: FastifyRequest): Promise<{ session: Session; user: User }> => {
    const session = sessions.get(parseCookies(request.headers.cookie).get(SESSION_COOKIE));
    const user = session && (await store.userById(session.userId));
    if (!session || !user) throw unauthorized();
    return { session, user };
  };

  // CSRF: every state-changing request under /ui/api carries the session's token in X-CSRF-Token; sign-in
  // (no session yet) must be JSON from this origin, which a cross-site form cannot send.
  app.addHook('onRequest', async (request) => {
    const url = request.routeOptions.url ?? '';
    if (!url.startsWith('/ui/api/') || request.method === 'GET' || request.method === 'HEAD') return;
    const origin = request.headers.origin;
    if (origin !== undefined && new URL(origin, 'http://x').host !== request.headers.host) {
      throw new HttpError(403, 'CSRF', `cross-origin request refused (Origin ${origin})`);
    }
    if (url === '/ui/api/session') {
      if (!String(request.headers['content-type'] ?? '').startsWith('application/json')) {
        throw new HttpError(415, 'CSRF', 'sign-in must be a JSON request');
      }
      return;
    }
    const { session } = await sessionOf(request);
    const given = request.headers[CSRF_HEADER];
    if (typeof given !== 'string' || !sameSecret(given, session.csrf)) {
      throw new HttpError(403, 'CSRF', `missing or wrong ${CSRF_HEADER} header`);
    }
  });

  app.post('/ui/api/session', async (request, reply) => {
    const token = (request.body as { token?: unknown } | null)?.token;
    if (typeof token !== 'string' || token.length === 0 || token.length > 500) throw new HttpError(400, 'BAD_REQUEST', '"token" must be a non-empty string');
    const user = await store.userByToken(token.trim());
    if (!user) throw new HttpError(401, 'UNAUTHORIZED', 'invalid token');
    const session = sessions.create(user.id);
    void reply.header('set-cookie', sessionCookie(session.id, sessions.ttlSeconds, request.protocol === 'https'));
    return { user: user.name, csrf: session.csrf };
  });

  app.get('/ui/api/session', async (request) => {
    const { session, user } = await sessionOf(request);
    return { user: user.name, csrf: session.csrf, periodMs: collector.periodMs };
  });

  app.post('/ui/api/logout', async (request, reply) => {
    const { session } = await sessionOf(request);
    sessions.delete(session.id);
    void reply.header('set-cookie', clearedCookie(request.protocol === 'https'));
    return { signedOut: true };
  });

  const endpointView = async (user: User, e: EndpointRecord) => {
    const forwarder = ctx.forwarders.get(e.id);
    const mine = e.owner === user.id;
    const h = collector.history(e.id);
    return {
      endpointId: e.id,
      name: e.name,
      owner: (await store.userById(e.owner))?.name ?? e.owner,
      mine,
      state: forwarder ? forwarder.state : 'Inactive',
      lastSeen: e.lastSeen,
      group: e.group ? ((await store.group(e.group))?.name ?? e.group) : null,
      queued: await store.countQueued(e.id),
      report: mine && h ? trimReport(h.report) : null,
      reportAt: mine && h ? h.reportAt : null,
      reportError: mine && h ? h.reportError : null,
      blocks: mine && h ? h.blockTimeline() : [],
      decisions: mine && h ? h.decisions.toArray() : [],
    };
  };

  const visibleEndpoint = async (user: User, id: string): Promise<EndpointRecord> => {
    const e = isUuid(id) ? await store.endpoint(id) : undefined;
    if (!e || !(await mayUseEndpoint(store, user, e))) throw new HttpError(404, 'NOT_FOUND', `no endpoint ${id}`);
    return e;
  };

  app.get('/ui/api/endpoints', async (request) => {
    const { user } = await sessionOf(request);
    return { endpoints: await Promise.all((await store.endpointsFor(user.id)).map((e) => endpointView(user, e))) };
  });

  app.get<{ Params: { id: string } }>('/ui/api/endpoints/:id/history', async (request) => {
    const { user } = await sessionOf(request);
    const e = await visibleEndpoint(user, request.params.id);
    return { endpointId: e.id, periodMs: collector.periodMs, samples: collector.history(e.id)?.samples.toArray() ?? [] };
  });

  app.get<{ Querystring: { q?: string; state?: string; endpoint?: string; limit?: string } }>('/ui/api/tasks', async (request) => {
    const { user } = await sessionOf(request);
    const { q, state, endpoint, limit } = request.query;
    if (state && !STATES.has(state as TaskState)) throw new HttpError(400, 'BAD_REQUEST', `"state" must be one of ${[...STATES].join(', ')}`);
    const tasks = await searchTasks(store, user.id, { q: q?.slice(0, 100), state: (state || undefined) as TaskState | undefined, endpointId: endpoint || undefined, limit: limit ? Number(limit) || 100 : 100 });
    return { tasks };
  });

  app.get<{ Params: { id: string } }>('/ui/api/tasks/:id', async (request) => {
    const { user } = await sessionOf(request);
    const task = isUuid(request.params.id) ? await store.task(request.params.id) : undefined;
    if (!task || task.owner !== user.id) throw new HttpError(404, 'NOT_FOUND', `no task ${request.params.id}`);
    const view: Record<string, unknown> = {
      taskId: task.id, endpointId: task.endpoint, functionId: task.function, state: task.state, failed: task.failed,
      createdAt: task.createdAt, updatedAt: task.updatedAt, resultBytes: task.result?.length ?? 0,
      transitions: await store.transitions(task.id),
    };
    if (task.result && task.result.length <= SMALL_RESULT_BYTES) {
      try {
        const outcome = decodeOutcome(task.result);
        if (outcome.ok) view.value = safeJson(outcome.value);
        else view.error = outcome.error;
      } catch (err) {
        view.error = { type: 'UndecodableResult', message: (err as Error).message };
      }
    }
    return view;
  });

  app.get('/ui/api/functions', async (request) => {
    const { user } = await sessionOf(request);
    return { functions: await functionsFor(store, user.id) };
  });

  app.get('/ui/api/groups', async (request) => {
    const { user } = await sessionOf(request);
    const groups = await store.groupsOf(user.id);
    return { groups: await Promise.all(groups.map(async (g) => ({ groupId: g.id, name: g.name, owner: (await store.userById(g.owner))?.name ?? g.owner, members: g.members }))) };
  });

  app.get('/ui/api/events', async (request, reply) => sse(request, reply));

  /** Server-sent events: one `endpoint` event per collected sample of an endpoint the user may see. */
  async function sse(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { user } = await sessionOf(request);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(`retry: 2000\n: connected\n\n`);
    const allowed = new Map<string, boolean>();
    let open = true;
    const send = async (endpointId: string): Promise<void> => {
      let ok = allowed.get(endpointId);
      if (ok === undefined) {
        const e = await store.endpoint(endpointId);
        ok = e !== undefined && (await mayUseEndpoint(store, user, e));
        allowed.set(endpointId, ok);
      }
      if (!ok) return;
      const e = await store.endpoint(endpointId);
      if (!e || !open) return;
      const sample = collector.history(endpointId)?.samples.last();
      res.write(`event: endpoint\ndata: ${JSON.stringify({ endpoint: await endpointView(user, e), sample })}\n\n`);
    };
    const onSample = (endpointId: string): void => {
      send(endpointId).catch((err: Error) => ctx.log.warn(`dashboard events: ${err.message}`));
    };
    // Sharing may change: look again now and then rather than caching forever.
    const ping = setInterval(() => (allowed.clear(), res.write(': ping\n\n')), 15_000);
    collector.on('sample', onSample);
    const close = (): void => {
      open = false;
      clearInterval(ping);
      collector.off('sample', onSample);
    };
    request.raw.on('close', close);
    res.on('error', close);
  }
}

/** The report as the page needs it: every block, but at most 50 managers listed (all counted). */
function trimReport(report: unknown): unknown {
  const r = report as { managers?: unknown[] } | null;
  if (!r || !Array.isArray(r.managers)) return r;
  return { ...r, managers: r.managers.slice(0, 50), managerCount: r.managers.length };
}

/** A value as JSON can carry it (bigints and typed arrays as strings), capped. */
function safeJson(value: unknown): unknown {
  try {
    const text = JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : ArrayBuffer.isView(v) ? `<${v.byteLength} bytes>` : v));
    return text === undefined ? null : JSON.parse(text);
  } catch {
    return String(value);
  }
}
