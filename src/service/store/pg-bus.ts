/**
 * The replica bus on PostgreSQL LISTEN/NOTIFY (see ../replica-bus.ts for why a doorbell and not a poll).
 *
 * One dedicated connection per replica listens on four channels; notifications go out through the pool, and
 * token changes (rotate, revoke, disable, remove) are told by the store's own statements that make them.
 * A payload is `<replica id> <data>` so a replica ignores its own. NOTIFY payloads are capped at 8000 bytes,
 * so result ids go out in chunks. Results are told by the statement that stores them
 * (PgStore.announceResultsOn). When the listening connection drops it reconnects (backing off to 2 s) and
 * reports `missed`.
 */
import pg from 'pg';
import type { Logger } from '../../logger.js';
import type { ReplicaBus, ReplicaEvents } from '../replica-bus.js';
import type { PgStore } from './postgres.js';
import { TOKENS_CHANNEL } from './pg-sql.js';

const CHANNELS = { tasks: 'funcx_tasks', results: 'funcx_results', claims: 'funcx_endpoints', tokens: TOKENS_CHANNEL } as const;
const MAX_PAYLOAD = 7900;

export class PgReplicaBus implements ReplicaBus {
  private client?: pg.Client;
  private closed = false;
  private retryMs = 100;
  private retryTimer?: NodeJS.Timeout;
  private closing?: Promise<void>;

  private constructor(
    private readonly store: PgStore,
    private readonly replica: string,
    private readonly events: ReplicaEvents,
    private readonly log: Logger,
  ) {}

  /** Listen from now on; resolves once the first LISTEN is in place. */
  static async start(store: PgStore, replica: string, events: ReplicaEvents, log: Logger): Promise<PgReplicaBus> {
    const bus = new PgReplicaBus(store, replica, events, log);
    await bus.connect();
    // Results are told by the statement that stores them (one statement per batch, not a NOTIFY after it).
    store.announceResultsOn(CHANNELS.results, replica);
    return bus;
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.store.url, application_name: 'funcx-service-bus' });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    client.on('notification', (n) => this.receive(n.channel, n.payload ?? ''));
    await client.connect();
    await client.query(Object.values(CHANNELS).map((c) => `LISTEN ${c}`).join('; '));
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.retryMs = 100;
  }

  private lost(client: pg.Client, err: Error): void {
    if (this.client !== client || this.closed) return;
    this.client = undefined;
    this.log.warn(`replica bus: lost the database connection (${err.message}); reconnecting`);
    void client.end().catch(() => undefined);
    this.reconnect();
  }

  private reconnect(): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect().then(
        () => {
          this.log.info('replica bus: listening again');
          this.events.missed();
        },
        (err) => {
          this.log.debug(`replica bus: reconnect failed: ${(err as Error).message}`);
          this.retryMs = Math.min(this.retryMs * 2, 2000);
          this.reconnect();
        },
      );
    }, this.retryMs);
    this.retryTimer.unref();
  }

  private receive(channel: string, payload: string): void {
    const space = payload.indexOf(' ');
    if (space < 0 || payload.slice(0, space) === this.replica) return;
    const from = payload.slice(0, space);
    const data = payload.slice(space + 1);
    if (channel === CHANNELS.tasks) this.events.tasksQueued(data.split(','));
    else if (channel === CHANNELS.results) this.events.resultsStored(data.split(','));
    else if (channel === CHANNELS.claims) this.events.endpointClaimed(data, from);
    else if (channel === CHANNELS.tokens) this.events.tokensChanged();
  }

  private async notify(channel: string, items: readonly string[]): Promise<void> {
    const payloads: string[] = [];
    let current = '';
    for (const item of items) {
      if (current && this.replica.length + 1 + current.length + 1 + item.length > MAX_PAYLOAD) {
        payloads.push(current);
        current = '';
      }
      current = current ? `${current},${item}` : item;
    }
    if (current) payloads.push(current);
    if (payloads.length === 0) return;
    await this.store.pool.query({
      name: 'bus-notify',
      text: 'SELECT pg_notify($1, $2 || \' \' || p) FROM unnest($3::text[]) AS p',
      values: [channel, this.replica, payloads],
    });
  }

  publishTasks(endpointIds: readonly string[]): Promise<void> {
    return this.notify(CHANNELS.tasks, endpointIds);
  }


  publishClaim(endpointId: string): Promise<void> {
    return this.notify(CHANNELS.claims, [endpointId]);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      clearTimeout(this.retryTimer);
      const client = this.client;
      this.client = undefined;
      await client?.end().catch(() => undefined);
    })();
    return this.closing;
  }
}
