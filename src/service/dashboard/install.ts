/**
 * The one hook the service calls: /metrics, the status collector, and the web dashboard (the page at /,
 * its bundled assets under /ui/, its API under /ui/api). Everything here is created and closed with the app.
 */
import type { FastifyInstance } from 'fastify';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ServiceContext } from '../routes/context.js';
import type { ResultWaiters } from '../routes/long-poll.js';
import { metricsRoute, scrapeToken, ServiceMetrics } from '../metrics.js';
import { StatusCollector } from './collector.js';
import { dashboardRoutes } from './routes.js';
import { Sessions } from './session.js';

/** Routes that do their own authentication (cookie session or scrape token), not the API's bearer token. */
export const DASHBOARD_PUBLIC_PATHS = [
  '/', '/ui/app.js', '/ui/app.css', '/metrics',
  '/ui/api/session', '/ui/api/logout', '/ui/api/endpoints', '/ui/api/endpoints/:id/history', '/ui/api/tasks',
  '/ui/api/tasks/:id', '/ui/api/functions', '/ui/api/groups', '/ui/api/events',
] as const;

export interface DashboardOptions {
  ctx: ServiceContext;
  waiters: ResultWaiters;
  home: string;
  /** The address the service listens on: /metrics is open on loopback, behind a scrape token otherwise. */
  host: string;
  /** How often each connected endpoint is asked for its status. @default 2000 (FUNCX_DASHBOARD_PERIOD_MS) */
  statusPeriodMs?: number;
}

export interface Dashboard {
  metrics: ServiceMetrics;
  collector: StatusCollector;
}

/** Where `npm run build` puts the bundled page (dist/web), seen from dist/src/service/dashboard. */
const WEB_DIR = fileURLToPath(new URL('../../../web/', import.meta.url));
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

export function installDashboard(app: FastifyInstance, o: DashboardOptions): Dashboard {
  const { ctx } = o;
  const metrics = new ServiceMetrics({ store: ctx.store, forwarders: ctx.forwarders, openLongPolls: () => o.waiters.open });
  metrics.wrapStore(ctx.store);
  metrics.installHttpHooks(app);
  const token = scrapeToken(o.home, o.host);
  metricsRoute(app, metrics, token);
  if (token) ctx.log.info(`GET /metrics needs "Authorization: Bearer <the token in ${o.home}/metrics-token>" (the service is not on loopback)`);
  const envPeriod = Number(process.env.FUNCX_DASHBOARD_PERIOD_MS);
  const collector = new StatusCollector({
    store: ctx.store,
    forwarders: ctx.forwarders,
    finished: (id) => metrics.finishedCount(id),
    periodMs: o.statusPeriodMs ?? (Number.isInteger(envPeriod) && envPeriod >= 100 ? envPeriod : 2000),
    log: ctx.log.child('dashboard'),
  });
  dashboardRoutes(app, { ctx, sessions: new Sessions(), collector });
  const cache = new Map<string, Buffer>();
  for (const [path, asset] of Object.entries(ASSETS)) {
    app.get(path, async (_request, reply) => {
      let body = cache.get(asset.file);
      if (!body) {
        const file = WEB_DIR + asset.file;
        if (!existsSync(file)) {
          return reply.code(503).send({ statusCode: 503, code: 'NOT_BUILT', message: `the dashboard is not built (${file} is missing): run \`npm run build\`` });
        }
        body = readFileSync(file);
        cache.set(asset.file, body);
      }
      return reply
        .header('content-type', asset.type)
        .header('content-security-policy', CSP)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('cache-control', 'no-cache')
        .send(body);
    });
  }
  app.addHook('onClose', async () => collector.stop());
  return { metrics, collector };
}
