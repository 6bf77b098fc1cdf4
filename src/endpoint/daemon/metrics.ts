/**
 * The endpoint daemon's Prometheus metrics, served on `metrics_port` (profile; off by default; bound to
 * `metrics_host`, loopback unless told otherwise). Names start with `funcx_endpoint_`.
 *
 * Gauges are read from `engine.status()` when scraped; the running daemon only increments counters per
 * batch (tasks received and dispatched, results), per scheduler command and per strategy decision.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Engine } from '../engine/engine.js';
import type { ExecutionProvider } from '../../../providers/provider.js';
import type { Decision } from '../engine/strategy.js';

const DECISION_KINDS = ['submit', 'hold', 'release', 'cancel', 'drain'] as const;
type SchedulerCommand = 'submit' | 'status' | 'cancel';

export class EndpointMetrics {
  readonly registry = new Registry();
  readonly tasksReceived: Counter;
  readonly tasksDispatched: Counter;
  readonly results: Counter<'outcome'>;
  readonly schedulerSeconds: Histogram<'command'>;
  readonly schedulerFailures: Counter<'command'>;
  readonly decisions: Counter<'kind'>;

  constructor(engine: Engine) {
    const registers = [this.registry];
    let status: ReturnType<Engine['status']> | null = null;
    let statusAt = 0;
    // One engine.status() per scrape, shared by the gauges below.
    const current = () => {
      if (!status || Date.now() - statusAt > 100) {
        status = engine.status();
        statusAt = Date.now();
      }
      return status;
    };
    new Gauge({
      name: 'funcx_endpoint_blocks',
      help: 'Live blocks by state (submitting, pending, running, draining, held).',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        const counts = new Map<string, number>();
        for (const b of current().blocks) {
          const state = b.phase === 'draining' || b.phase === 'held' ? b.phase : b.state;
          counts.set(state, (counts.get(state) ?? 0) + 1);
        }
        for (const s of ['submitting', 'pending', 'running', 'draining', 'held']) counts.set(s, counts.get(s) ?? 0);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    new Gauge({ name: 'funcx_endpoint_managers', help: 'Managers registered with the interchange.', registers, collect() { this.set(current().managers.length); } });
    new Gauge({
      name: 'funcx_endpoint_workers',
      help: 'Workers by state (busy: running a task; idle).',
      labelNames: ['state'],
      registers,
      collect() {
        let busy = 0;
        let idle = 0;
        for (const b of current().blocks) (busy += b.busyWorkers), (idle += b.idleWorkers);
        this.set({ state: 'busy' }, busy);
        this.set({ state: 'idle' }, idle);
      },
    });
    new Gauge({ name: 'funcx_endpoint_backlog_tasks', help: 'Tasks waiting for a worker at the interchange.', registers, collect() { this.set(current().backlog); } });
    new Gauge({ name: 'funcx_endpoint_pending_tasks', help: 'Tasks the interchange holds (queued or running).', registers, collect() { this.set(current().pending); } });
    this.tasksReceived = new Counter({ name: 'funcx_endpoint_tasks_received_total', help: 'Tasks received from the service.', registers });
    this.tasksDispatched = new Counter({ name: 'funcx_endpoint_tasks_dispatched_total', help: 'Tasks sent to managers (rate() of it is the dispatch rate).', registers });
    this.results = new Counter({ name: 'funcx_endpoint_results_total', help: 'Results sent back to the service, by outcome.', labelNames: ['outcome'], registers });
    this.schedulerSeconds = new Histogram({
      name: 'funcx_endpoint_scheduler_command_duration_seconds',
      help: 'Latency of scheduler commands (submit, status, cancel) through the provider.',
      labelNames: ['command'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.schedulerFailures = new Counter({ name: 'funcx_endpoint_scheduler_command_failures_total', help: 'Scheduler commands that failed, by command.', labelNames: ['command'], registers });
    this.decisions = new Counter({ name: 'funcx_endpoint_strategy_decisions_total', help: 'Strategy decisions by kind (none: nothing to change).', labelNames: ['kind'], registers });
    for (const kind of [...DECISION_KINDS, 'none']) this.decisions.inc({ kind }, 0);
    for (const command of ['submit', 'status', 'cancel']) this.schedulerFailures.inc({ command }, 0);
  }

  /** Count one strategy decision under each kind it contains (or `none`). */
  noteDecision(d: Decision): void {
    let any = false;
    for (const kind of DECISION_KINDS) {
      if (d[kind].length > 0) {
        this.decisions.inc({ kind });
        any = true;
      }
    }
    if (!any) this.decisions.inc({ kind: 'none' });
  }

  /** Time the provider's scheduler commands (wrapping its methods, so every provider is covered alike). */
  wrapProvider(provider: ExecutionProvider): void {
    for (const command of ['submit', 'status', 'cancel'] as SchedulerCommand[]) {
      const original = (provider[command] as (...a: unknown[]) => Promise<unknown>).bind(provider);
      (provider as unknown as Record<string, unknown>)[command] = async (...args: unknown[]) => {
        const end = this.schedulerSeconds.startTimer({ command });
        try {
          return await original(...args);
        } catch (err) {
          this.schedulerFailures.inc({ command });
          throw err;
        } finally {
          end();
        }
      };
    }
  }

  /** Count every decision the strategy makes (wrapping its tick). */
  wrapStrategy(strategy: Engine['strategy']): void {
    const tick = strategy.tick.bind(strategy);
    strategy.tick = async () => {
      const d = await tick();
      if (d) this.noteDecision(d);
      return d;
    };
  }
}

/** Serve GET /metrics on host:port; resolves with the bound port. close() is idempotent. */
export async function serveMetrics(metrics: EndpointMetrics, host: string, port: number): Promise<{ port: number; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    metrics.registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => (server.off('error', reject), resolve()));
  });
  const address = server.address();
  let closing: Promise<void> | undefined;
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: () => (closing ??= new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); })),
  };
}
