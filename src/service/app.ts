/**
 * The fastify app: the protocol version check, authentication, every route file, and the errors' shape
 * (error-handler.ts). The state it serves is in the ServiceContext (routes/context.ts).
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { PROTOCOL_VERSION, protocolMismatchMessage } from '../protocol/forwarder-messages.js';
import { HttpError, installAuth } from './auth.js';
import type { ServiceContext } from './routes/context.js';
import { endpointRoutes } from './routes/endpoints.js';
import { functionRoutes } from './routes/functions.js';
import { taskRoutes } from './routes/tasks.js';
import { tenancyRoutes } from './routes/tenancy.js';
import { PUBLIC_PATHS, userRoutes } from './routes/users.js';
import { DASHBOARD_PUBLIC_PATHS } from './dashboard/install.js';
import { installErrorHandler } from './error-handler.js';

/** The header a client sends to say which protocol version it speaks. */
export const PROTOCOL_HEADER = 'x-funcx-protocol';

/** The fastify app with every route; `ctx` holds the state. */
export function buildApp(ctx: ServiceContext, tls?: { cert: Buffer; key: Buffer }): FastifyInstance {
  // Every route takes at most maxBodyBytes; the two that need more say so (tasks, functions).
  const app = Fastify({ logger: false, bodyLimit: ctx.limits.maxBodyBytes, forceCloseConnections: true, ...(tls ? { https: tls } : {}) }) as unknown as FastifyInstance;
  // Version check first: a client speaking another protocol hears that, whatever else is wrong. A callback
  // hook, not an async one: every request passes it, and it has nothing to wait for.
  app.addHook('onRequest', (request, _reply, done) => {
    const header = request.headers[PROTOCOL_HEADER];
    if (header !== undefined && String(header) !== String(PROTOCOL_VERSION)) {
      done(new HttpError(400, 'PROTOCOL_MISMATCH', protocolMismatchMessage('client', header, 'service')));
    } else done();
  });
  installAuth(app, ctx.store, [...PUBLIC_PATHS, ...DASHBOARD_PUBLIC_PATHS], ctx.tokenWatch);
  userRoutes(app, ctx);
  endpointRoutes(app, ctx);
  functionRoutes(app, ctx);
  taskRoutes(app, ctx);
  tenancyRoutes(app, ctx);
  installErrorHandler(app, ctx);
  return app;
}
