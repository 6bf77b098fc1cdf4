/**
 * The service's Prometheus metrics (`GET /metrics`, text format; every name starts with `funcx_`).
 *
 * Counts that live in the database (tasks by state) and in the service's objects (forwarders, long-polls)
 * are read at scrape time; the task path only increments counters (results stored, bytes) and the HTTP
 * hooks observe one histogram sample per request.
 *
 * Access: open when the service listens on loopback; otherwise `Authorization: Bearer <scrape token>`, the
 * token being FUNCX_SERVICE_HOME/metrics-token (created, mode 0600, on the first start that needs it).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ResultEnvelope } from '../protocol/messages.js';
import type { Store, StoredResults } from './store/index.js';
import type { ForwarderDirectory } from './routes/context.js';
import { countTasksByState } from './dashboard/queries.js';

export interface ServiceMetricsOptions {
  store: Store;
  forwarders: ForwarderDirectory;
  /** Long-polls waiting right now. */
  openLongPolls: () => number;
}

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly resultsStored: Counter<'endpoint' | 'outcome'>;
  readonly resultBytes: Counter<'endpoint'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  /** Per endpoint, per outcome: what the dashboard's tasks/s charts difference. */
  private readonly finished = new Map<string, { success: number; failed: number }>();

  constructor(private readonly o: ServiceMetricsOptions) {
    const registers = [this.registry];
    new Gauge({
      name: 'funcx_tasks',
      help: 'Tasks in the store by endpoint and state.',
      labelNames: ['endpoint', 'state'],
      registers,
      async collect() {
        this.reset();
        for (const c of await countTasksByState(o.store)) this.set({ endpoint: c.endpoint, state: c.state }, c.n);
      },
    });
    this.resultsStored = new Counter({
      name: 'funcx_results_stored_total',
      help: 'Task results stored since the service started, by endpoint and outcome (success or failed).',
      labelNames: ['endpoint', 'outcome'],
      registers,
    });
    this.resultBytes = new Counter({
      name: 'funcx_result_bytes_total',
      help: 'Bytes of task results stored since the service started, by endpoint.',
      labelNames: ['endpoint'],
      registers,
    });
    new Gauge({
      name: 'funcx_long_polls_open',
      help: 'HTTP long-polls waiting for results.',
      registers,
      collect() {
        this.set(o.openLongPolls());
      },
    });
    new Gauge({
      name: 'funcx_forwarder_connections',
      help: 'Forwarders by endpoint connection state (Active: the endpoint is connected).',
      labelNames: ['state'],
      registers,
      async collect() {
        let active = 0;
        let inactive = 0;
        for (const e of await o.store.allEndpoints()) {
          const f = o.forwarders.get(e.id);
          if (!f) continue;
          if (f.state === 'Active') active++;
          else inactive++;
        }
        this.set({ state: 'Active' }, active);
        this.set({ state: 'Inactive' }, inactive);
      },
    });
    new Gauge({
      name: 'funcx_forwarder_function_source_chars_sent',
      help: 'Characters of function sources sent to the endpoint since its forwarder opened (each source once per connection).',
      labelNames: ['endpoint'],
      registers,
      async collect() {
        this.reset();
        for (const e of await o.store.allEndpoints()) {
          const f = o.forwarders.get(e.id);
          if (f) this.set({ endpoint: e.id }, f.sentSources.sentChars);
        }
      },
    });
    this.httpDuration = new Histogram({
      name: 'funcx_http_request_duration_seconds',
      help: 'HTTP request latency by method, route and status code.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
  }

  /** Count the results a forwarder just stored (a loop of increments per batch; payloads are not decoded). */
  noteStored(endpointId: string, results: readonly ResultEnvelope[], out: StoredResults): void {
    if (out.stored.length === 0) return;
    const all = out.stored.length === results.length;
    const stored = all ? null : new Set(out.stored);
    let failed = 0;
    let bytes = 0;
    for (const r of results) {
      if (stored && !stored.has(r.id)) continue;
      if (r.failed) failed++;
      bytes += r.payload.byteLength;
    }
    const success = out.stored.length - failed;
    if (success) this.resultsStored.inc({ endpoint: endpointId, outcome: 'success' }, success);
    if (failed) this.resultsStored.inc({ endpoint: endpointId, outcome: 'failed' }, failed);
    this.resultBytes.inc({ endpoint: endpointId }, bytes);
    let f = this.finished.get(endpointId);
    if (!f) this.finished.set(endpointId, (f = { success: 0, failed: 0 }));
    f.success += success;
    f.failed += failed;
  }

  /** Results stored for an endpoint since start (cheap; no registry walk). */
  finishedCount(endpointId: string): { success: number; failed: number } {
    return this.finished.get(endpointId) ?? { success: 0, failed: 0 };
  }

  /**
   * Count results as the store saves them. The store is wrapped rather than edited so this works whichever
   * store is underneath (the call may return a promise).
   */
  wrapStore(store: Store): void {
    const original = store.storeResults.bind(store);
    const wrapped = (endpointId: string, results: readonly ResultEnvelope[], running?: readonly string[]) => {
      const out = original(endpointId, results, running) as StoredResults | Promise<StoredResults>;
      if (out instanceof Promise) return out.then((o) => (this.noteStored(endpointId, results, o), o));
      this.noteStored(endpointId, results, out);
      return out;
    };
    (store as { storeResults: unknown }).storeResults = wrapped;
  }

  /** Observe every request's latency, labelled by route pattern (not URL: ids would explode the labels). */
  installHttpHooks(app: FastifyInstance): void {
    app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      this.httpDuration.observe({ method: request.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
    });
  }
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost|::ffff:127\.\d+\.\d+\.\d+)$/i;

export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}

/** The scrape token (created on first need), or null when /metrics is open (loopback). */
export function scrapeToken(home: string, host: string): string | null {
  if (isLoopback(host)) return null;
  const path = join(home, 'metrics-token');
  if (!existsSync(path)) writeFileSync(path, randomBytes(24).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
  const token = readFileSync(path, 'utf8').trim();
  if (token.length < 16) throw new Error(`${path}: the scrape token must be at least 16 characters`);
  return token;
}

/** GET /metrics, behind the scrape token unless `token` is null. */
export function metricsRoute(app: FastifyInstance, metrics: ServiceMetrics, token: string | null): void {
  const expected = token === null ? null : Buffer.from(`Bearer ${token}`);
  app.get('/metrics', async (request, reply) => {
    if (expected) {
      const given = Buffer.from(String(request.headers.authorization ?? ''));
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        return reply.code(401).send({ statusCode: 401, code: 'UNAUTHORIZED', message: 'GET /metrics needs "Authorization: Bearer <scrape token>" (FUNCX_SERVICE_HOME/metrics-token)' });
      }
    }
    const body = await metrics.registry.metrics();
    return reply.header('content-type', metrics.registry.contentType).header('cache-control', 'no-store').send(body);
  });
}
