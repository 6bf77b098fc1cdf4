/**
 * The chaos cases of a facility's service on PostgreSQL (README "Running the service for a facility"): a
 * replica killed under its endpoint, and PostgreSQL itself stopped and started again under a running
 * service. Both need PostgreSQL (root); without it they are skipped, saying so (run-case.ts skipReason).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { postgresBackend, privatePostgres, type PrivatePostgres, type TestDatabase } from '../helpers/store-backends.js';
import { untilValue } from '../helpers/wait.js';
import { TcpBalancer } from './balancer.js';
import { HEARTBEAT, localProfile } from './profiles.js';
import { kill9, until } from './procs.js';
import { Replica } from './replicas.js';
import { GATED_FROM, type Rig } from './harness.js';
import type { CaseContext, RunOptions, ServiceCase, ServiceSide } from './run-case.js';

/** How long a case waits for its first results (the blocks starting). */
const FIRST_RESULTS_MS = 120_000;
/** replica-kill: the fraction of results in before the kill (the rest, ≥ 1,000 in the full run, in flight). */
const REPLICA_KILL_AFTER = 0.05;
/** replica-kill: tasks of the full run per task of the run's count (1,500 for 1,000: ≥ 1,000 in flight at the kill). */
const REPLICA_KILL_TASKS_FACTOR = 1.5;
/** The longest an endpoint may take to find the surviving replica (its heartbeat threshold, then a registration). */
const FAILOVER_MAX_MS = 90_000;
/** postgres-restart: the fraction of results in before PostgreSQL stops. */
const OUTAGE_AFTER = 0.25;
/** postgres-restart: requests answered 503 before PostgreSQL comes back (at the least). */
const OUTAGE_MIN_503 = 5;
/** postgres-restart: the pace of the requests a user makes during the outage. */
const OUTAGE_PROBE_EVERY_MS = 100;
/** The longest the outage may take to show (503s, results held) and the service to answer again. */
const OUTAGE_MAX_MS = 60_000;

/**
 * The forwarders' heartbeats: the suite's short ones (profiles.ts), so the endpoint misses a dead replica,
 * and sends again results the service did not acknowledge, within seconds. At the service's defaults (2 s,
 * 10 s) the replica-kill failover took 18.6-19.6 s in five runs; with these, 8 s.
 */
const heartbeat = { periodMs: HEARTBEAT.period * 1000, thresholdMs: HEARTBEAT.threshold * 1000 };

/** `endpoints.replica`: the id of the replica whose forwarder serves the endpoint. */
async function endpointReplica(database: string, endpointId: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: database });
  await client.connect();
  try {
    const r = await client.query<{ replica: string | null }>('SELECT replica FROM endpoints WHERE id = $1', [endpointId]);
    return r.rows[0]?.replica ?? null;
  } finally {
    await client.end();
  }
}

const replicaKill: ServiceCase = {
  name: 'replica-kill',
  title: 'kill -9 of the service replica the endpoint is connected to (two replicas on one PostgreSQL behind a balancer)',
  postgres: true,
  profile: localProfile,
  tasks: (o: RunOptions) => (o.short ? o.tasks : Math.round(o.tasks * REPLICA_KILL_TASKS_FACTOR)),
  async start(rig: Rig, progress: (line: string) => void): Promise<ServiceSide> {
    const db: TestDatabase = await postgresBackend.create();
    const started: Array<{ stop(): Promise<void> }> = [];
    let a: Replica, b: Replica, lb: TcpBalancer;
    try {
      a = await Replica.start(rig, 'replica-a', db.location, { heartbeat });
      started.push(a);
      // As the README says: the others get the first replica's keys/forwarder.json (--forwarder-key).
      b = await Replica.start(rig, 'replica-b', db.location, { forwarderKeyFile: a.forwarderKeyFile, heartbeat });
      started.push(b);
      lb = await TcpBalancer.start([a.port, b.port]);
      started.push({ stop: () => lb.close() });
    } catch (err) {
      for (const s of started.reverse()) await s.stop().catch(() => {});
      await db.drop().catch(() => {});
      throw err;
    }
    rig.useService(lb.url); // the endpoint registers through the balancer (it picks replica-a while it lives)
    rig.env.FUNCX_DATABASE_URL = db.location; // for `funcx-service user add`
    progress(`replica-a ${a.url} (pid ${a.pid}), replica-b ${b.url} (pid ${b.pid}, --forwarder-key of replica-a), balancer ${lb.url}`);
    return {
      // The user submits on replica-b and reads there: tasks reach replica-a's forwarder through the database.
      clientUrl: b.url,
      chaos: (ctx) => killReplica(ctx, db.location, a, b, lb),
      close: async () => {
        await lb.close();
        await a.stop();
        await b.stop();
        await db.drop();
      },
    };
  },
};

async function killReplica(ctx: CaseContext, database: string, a: Replica, b: Replica, lb: TcpBalancer): Promise<void> {
  const { rig } = ctx;
  await ctx.collector.waitFor(REPLICA_KILL_AFTER, FIRST_RESULTS_MS);
  // The replica the endpoint is connected to is the one the database names for it, not a guess.
  const holder = await endpointReplica(database, rig.endpointId);
  if (holder !== a.replicaId()) {
    throw new Error(`the endpoint is served by replica ${holder}, not replica-a (${a.replicaId()}), which the balancer prefers while it lives`);
  }
  const onB = rig.client(b.url);
  // Where the unfinished tasks are: delivered to the endpoint (running, waiting-for-nodes) or still queued.
  const states: Record<string, number> = {};
  for (const v of await onB.getBatchResults(ctx.collector.pendingIds(), { waitMs: 0 })) if (v.pending) states[v.state] = (states[v.state] ?? 0) + 1;
  const inFlight = ctx.collector.pending;
  await kill9(a.pid, 'replica-a (funcx-service)');
  ctx.broke(`kill -9 replica-a pid ${a.pid}, which served the endpoint (tasks submitted on replica-b)`);
  ctx.figure('in_flight_at_kill', inFlight);
  ctx.note(`just before the kill the unfinished tasks were ${JSON.stringify(states)}`);
  // Nothing done by hand: the endpoint misses the forwarder's heartbeats, registers again through the
  // balancer (now replica-b), which takes it over and sends again every task delivered without a result.
  const t0 = Date.now();
  await until('the endpoint to be served by replica-b', async () => (await endpointReplica(database, rig.endpointId)) === b.replicaId(), {
    timeoutMs: FAILOVER_MAX_MS,
    everyMs: 250,
  });
  ctx.figure('failover_s', Math.round((Date.now() - t0) / 100) / 10);
  await until('replica-b to report the endpoint Active', async () => (await onB.getEndpoint(rig.endpointId)).state === 'Active', { timeoutMs: 30_000, everyMs: 200 });
  ctx.note(`the endpoint registered again through the balancer and was served by replica-b ${((Date.now() - t0) / 1000).toFixed(1)} s after the kill; balancer connections by port ${JSON.stringify(lb.connections)}`);
}

const postgresRestart: ServiceCase = {
  name: 'postgres-restart',
  title: "the service's PostgreSQL stopped mid-run (pg_ctl stop -m fast), then started again",
  postgres: true,
  profile: localProfile,
  async start(rig: Rig, progress: (line: string) => void): Promise<ServiceSide> {
    // A server of its own (its own data folder and port): stopping it disturbs nobody else's database.
    const server = await privatePostgres();
    try {
      rig.env.FUNCX_DATABASE_URL = server.url;
      await rig.startService(0, ['--heartbeat-period-ms', String(heartbeat.periodMs), '--heartbeat-threshold-ms', String(heartbeat.thresholdMs)]);
    } catch (err) {
      await server.destroy().catch(() => {});
      throw err;
    }
    progress(`funcx-service ${rig.url} on a PostgreSQL of its own (${new URL(server.url).host})`);
    return { chaos: (ctx) => restartPostgres(ctx, server), close: () => server.destroy() };
  },
};

/** What the requests made during the outage were answered, by kind. */
interface OutageAnswers {
  requests: number;
  /** 503 STORE_UNAVAILABLE with a Retry-After header. */
  unavailable: number;
  /** Anything else, by status (or error), e.g. { '500': 1, 'ECONNREFUSED': 2 }. */
  other: Record<string, number>;
}

/** A user asking for a task's state every OUTAGE_PROBE_EVERY_MS until stopped. */
function probeOutage(url: string, token: string, taskId: string): { answers: OutageAnswers; stop(): Promise<void> } {
  const answers: OutageAnswers = { requests: 0, unavailable: 0, other: {} };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      let kind: string;
      try {
        const r = await fetch(`${url}/v1/tasks/${taskId}`, { headers: { authorization: `Bearer ${token}` } });
        const body = (await r.json().catch(() => ({}))) as { code?: string };
        kind = r.status === 503 && r.headers.get('retry-after') !== null && body.code === 'STORE_UNAVAILABLE' ? 'unavailable' : `${r.status} ${body.code ?? ''}`.trim();
      } catch (err) {
        kind = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      }
      if (stopped) break; // answered after PostgreSQL came back: not part of the outage
      answers.requests++;
      if (kind === 'unavailable') answers.unavailable++;
      else answers.other[kind] = (answers.other[kind] ?? 0) + 1;
      await new Promise((r) => setTimeout(r, OUTAGE_PROBE_EVERY_MS)); // a user's pace, not a wait for an event
    }
  })();
  return {
    answers,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

/** Result batches the endpoint holds on disk, not yet acknowledged by the service (outbox/*.batch). */
function heldBatches(rig: Rig): number {
  try {
    return readdirSync(join(rig.endpointDir, 'outbox')).filter((f) => f.endsWith('.batch')).length;
  } catch {
    return 0;
  }
}

async function restartPostgres(ctx: CaseContext, server: PrivatePostgres): Promise<void> {
  const { rig } = ctx;
  await ctx.collector.waitFor(OUTAGE_AFTER, FIRST_RESULTS_MS);
  await server.stop();
  const down = Date.now();
  ctx.broke('pg_ctl stop -m fast of the PostgreSQL the service uses');
  const probe = probeOutage(rig.url, rig.token, ctx.collector.ids[0]);
  // The gated tasks cannot finish before the gate opens (after the break): what the endpoint holds beyond
  // them is work it can still do without the service.
  const gatedFrom = Math.floor(ctx.collector.ids.length * GATED_FROM);
  const gated = ctx.collector.ids.length - gatedFrom;
  try {
    // Down until the endpoint has run every task it can (its interchange holds no more than the gated ones)
    // and holds results the service could not store, and users have been told to come back later: not for
    // a guessed time. The endpoint meanwhile sends its unacknowledged results again each heartbeat threshold.
    let held = 0;
    await until(`the endpoint to run down to the ${gated} gated tasks, holding unacknowledged results, and ${OUTAGE_MIN_503} requests answered 503`, async () => {
      held = (await rig.status()).pending;
      return held <= gated && heldBatches(rig) > 0 && probe.answers.unavailable >= OUTAGE_MIN_503;
    }, { timeoutMs: OUTAGE_MAX_MS, everyMs: 100 });
    ctx.note(`the endpoint ran down to ${held} tasks (${gated} gated) and held ${heldBatches(rig)} result batches it could not get acknowledged`);
  } finally {
    await probe.stop();
    await server.start();
  }
  const outageS = (Date.now() - down) / 1000;
  const { answers } = probe;
  ctx.figure('outage_s', Math.round(outageS * 10) / 10);
  ctx.figure('outage_requests', answers.requests);
  ctx.figure('outage_503_retry_after', answers.unavailable);
  ctx.note(`PostgreSQL down ${outageS.toFixed(1)} s: ${answers.requests} requests, ${answers.unavailable} answered 503 STORE_UNAVAILABLE with Retry-After${Object.keys(answers.other).length ? `, others ${JSON.stringify(answers.other)}` : ''}`);
  const t0 = Date.now();
  await untilValue('the service to answer again after PostgreSQL started', async () => (await fetch(`${rig.url}/v1/whoami`, { headers: { authorization: `Bearer ${rig.token}` } })).status, {
    ok: (status) => status === 200,
    timeoutMs: OUTAGE_MAX_MS,
    everyMs: 100,
  });
  ctx.figure('reconnect_s', Math.round((Date.now() - t0) / 100) / 10);
  ctx.note(`pg_ctl start: the service answered again ${((Date.now() - t0) / 1000).toFixed(1)} s later, reconnected by itself`);
  const others = Object.values(answers.other).reduce((x, y) => x + y, 0);
  if (others > 0) throw new Error(`${others} of ${answers.requests} requests during the outage were not answered 503 with Retry-After: ${JSON.stringify(answers.other)}`);
}

/** The PostgreSQL cases, in the order the suite runs them. */
export const STORE_CASES: readonly ServiceCase[] = [replicaKill, postgresRestart];
