/**
 * Gathers each connected endpoint's status at a bounded rate: one `status` command per endpoint per period
 * over the existing commands channel (the endpoint answers from memory), so an endpoint never reports more
 * often than the service asks. Samples go to a bounded in-memory history and out to the dashboard's
 * server-sent events. Nothing here touches the task path.
 *
 * State: running → stopped (stop() is idempotent).
 */
import { EventEmitter } from 'node:events';
import type { Store } from '../store/index.js';
import type { ForwarderDirectory } from '../routes/context.js';
import type { Logger } from '../../logger.js';
import { EndpointHistory, type ReportLike, type StatusSample } from './status-history.js';

export interface CollectorOptions {
  store: Store;
  forwarders: ForwarderDirectory;
  /** Results stored since start, per endpoint (ServiceMetrics.finishedCount). */
  finished: (endpointId: string) => { success: number; failed: number };
  /** @default 2000 */
  periodMs?: number;
  /** How far back the charts reach. @default 1 hour */
  historyMs?: number;
  log: Logger;
}

export interface CollectorEvents {
  sample: [endpointId: string, sample: StatusSample];
}

export class StatusCollector extends EventEmitter<CollectorEvents> {
  readonly periodMs: number;
  private readonly capacity: number;
  private readonly histories = new Map<string, EndpointHistory>();
  private timer: NodeJS.Timeout | null = null;
  private collecting = false;
  private state: 'running' | 'stopped' = 'running';

  constructor(private readonly o: CollectorOptions) {
    super();
    this.periodMs = o.periodMs ?? 2000;
    this.capacity = Math.max(10, Math.ceil((o.historyMs ?? 3_600_000) / this.periodMs));
    this.timer = setInterval(() => void this.collect(), this.periodMs);
    this.timer.unref();
  }

  history(endpointId: string): EndpointHistory | undefined {
    return this.histories.get(endpointId);
  }

  /** One round over the endpoints that have a connected forwarder. Skipped while the previous runs. */
  async collect(): Promise<void> {
    if (this.collecting || this.state !== 'running') return;
    this.collecting = true;
    try {
      const endpoints = await this.o.store.allEndpoints();
      await Promise.all(
        endpoints.map(async (e) => {
          const forwarder = this.o.forwarders.get(e.id);
          if (!forwarder) return;
          let report: ReportLike | null = null;
          let error: string | null = null;
          if (forwarder.state === 'Active') {
            try {
              const reply = await forwarder.command({ name: 'status' }, Math.max(1000, this.periodMs * 2));
              if (reply.ok) report = (reply.result ?? null) as ReportLike | null;
              else error = reply.error ?? 'the endpoint refused the status command';
            } catch (err) {
              error = (err as Error).message;
            }
          } else {
            error = 'not connected';
          }
          if (this.state !== 'running') return;
          let h = this.histories.get(e.id);
          if (!h) this.histories.set(e.id, (h = new EndpointHistory(this.capacity)));
          const sample = h.record(Date.now(), report, this.o.finished(e.id), error);
          this.emit('sample', e.id, sample);
        }),
      );
    } catch (err) {
      this.o.log.warn(`status collection failed: ${(err as Error).message}`);
    } finally {
      this.collecting = false;
    }
  }

  stop(): void {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.removeAllListeners();
  }
}
