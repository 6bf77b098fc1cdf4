/**
 * The funcX web service: a fastify app over the store (SQLite or PostgreSQL), one forwarder per endpoint, and long-polls
 * woken by the forwarders' "results stored" events. `startService` is what `funcx-service start` runs.
 *
 * HTTP API (JSON; `Authorization: Bearer <token>` everywhere but /v1/health; a client sending
 * `X-Funcx-Protocol` with another version gets 400 naming both; errors are `{statusCode, code, message}`):
 *   GET  /v1/health                        {ok, protocol, pid}
 *   GET  /v1/whoami                        {userId, name, groups}
 *   POST /v1/groups {name}                 {groupId, name}           GET /v1/groups → {groups}
 *   POST /v1/groups/:idOrName/members {user}   owner only (403)
 *   POST /v1/endpoints {name, endpointId?, publicKey, protocol, group?}
 *        → {endpointId, forwarder: {host, ports: {tasks, results, commands}, publicKey}, protocol}
 *        (someone else's endpointId → 403)
 *   GET  /v1/endpoints → {endpoints}       GET /v1/endpoints/:id → {endpointId, name, owner, state, lastSeen, group, queued}
 *   GET  /v1/endpoints/:id/status          the endpoint's own report (owner; 409 when not connected)
 *   POST /v1/endpoints/:id/stop            asks the endpoint to stop (owner)
 *   POST /v1/functions {name, source, group?} → {functionId}      GET /v1/functions/:id
 *   POST /v1/tasks {tasks: [{endpointId, functionId, args: base64(encodeArgs)} | {endpointId, shell: {command,
 *        walltimeMs?, cwd?, env?}} | {endpointId, mpi: {command, ranks, walltimeMs?}}]} → {taskIds}
 *   GET  /v1/tasks/:id?wait=S → {taskId, state, endpointId, functionId, failed?, result?: base64(Outcome), ...}
 *   POST /v1/tasks/results?wait=S {ids, mode: 'all'|'any'} → {results[, pending]}
 *   GET  /v1/tasks/:id/transitions → {taskId, transitions: [{state, actor, at}]}
 */
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { PROTOCOL_VERSION, protocolMismatchMessage } from '../protocol/forwarder-messages.js';
import { loadOrCreateKeyPair, readKeyPair, type CurveKeyPair } from '../protocol/keys.js';
import { FuncxError } from '../errors.js';
import type { ErrorBody } from '../protocol/http.js';
import { createLogger, type Logger } from '../logger.js';
import { HttpError, installAuth } from './auth.js';
import { TaskRateLimiter } from './task-rate.js';
import { Forwarder, type ForwarderOptions } from './forwarder/forwarder.js';
import { openStore, PgStore, QuotaExceededError, StoreUnavailableError, type EndpointRecord, type Store } from './store/index.js';
import { quotaExceeded, resolveLimits, resolveQuotas, type ServiceLimits, type ServiceQuotas } from './limits.js';
import { PgReplicaBus } from './store/pg-bus.js';
import { localBus, type ReplicaBus } from './replica-bus.js';
import type { ForwarderDirectory, ServiceContext } from './routes/context.js';
import { endpointRoutes } from './routes/endpoints.js';
import { functionRoutes } from './routes/functions.js';
import { ResultWaiters } from './routes/long-poll.js';
import { taskRoutes } from './routes/tasks.js';
import { tenancyRoutes } from './routes/tenancy.js';
import { TokenWatch } from './token-watch.js';
import { PUBLIC_PATHS, userRoutes } from './routes/users.js';
import { DASHBOARD_PUBLIC_PATHS, installDashboard, type Dashboard } from './dashboard/install.js';

/** A forwarder closes once its endpoint has been gone this long (ServiceOptions.forwarderIdleCloseMs). */
export const DEFAULT_FORWARDER_IDLE_CLOSE_MS = 3600_000;

/** What a 503 tells the client to wait while the database is unavailable. */
const RETRY_AFTER_SECONDS = 2;

/** The header a client sends to say which protocol version it speaks. */
export const PROTOCOL_HEADER = 'x-funcx-protocol';

export interface ServiceOptions extends Partial<ServiceLimits> {
  /** State folder (FUNCX_SERVICE_HOME): service.db (unless `database` says otherwise) and keys/. */
  home: string;
  /** Serve HTTPS with this certificate and key (PEM files). */
  tls?: { cert: string; key: string };
  /** Per-user quotas; absent ones keep their defaults (limits.ts). */
  quotas?: Partial<ServiceQuotas>;
  /**
   * The forwarder's CURVE key pair, shared by every replica behind one address (endpoints pin it); 0600.
   * @default HOME/keys/forwarder.json, created on first start
   */
  forwarderKeyFile?: string;
  /** Where the state lives: a SQLite file path or a postgres:// URL. @default HOME/service.db */
  database?: string;
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 lets the OS choose. @default 8080 */
  port?: number;
  /** Where forwarders bind. @default host */
  forwarderHost?: string;
  /** Host endpoints are told to dial. @default forwarderHost */
  forwarderAdvertiseHost?: string;
  /** Inclusive port range for forwarder sockets; OS-chosen ports when absent. */
  forwarderPortRange?: readonly [number, number];
  /** @default 2000 */
  heartbeatPeriodMs?: number;
  /** @default 10000 */
  heartbeatThresholdMs?: number;
  /** How often the tokens of open long-polls are checked again (a revoked one cuts them). @default 1000 */
  tokenRecheckMs?: number;
  /** Longest long-poll, seconds. @default 60 */
  maxWaitSeconds?: number;
  /**
   * This replica's name, kept in the database next to the endpoints it serves. Stable across restarts so a
   * restarted replica takes back its endpoints. @default a UUID kept in HOME/replica-id
   */
  replicaId?: string;
  /** A forwarder closes once its endpoint has been gone (not Active) this long; 0 keeps them open. @default 1 hour */
  forwarderIdleCloseMs?: number;
  /** Forwarders are re-created at start for endpoints seen within this many ms. @default 7 days */
  restoreWithinMs?: number;
  log?: Logger;
}

export interface RunningService {
  url: string;
  host: string;
  port: number;
  store: Store;
  forwarders: ForwarderPool;
  waiters: ResultWaiters;
  replicaId: string;
  app: FastifyInstance;
  /** /metrics and the web dashboard's status history (src/service/dashboard). */
  dashboard: Dashboard;
  /** Stop: answers waiting long-polls, closes HTTP, forwarders and the database. Safe to call twice. */
  close(): Promise<void>;
}

interface PoolOptions {
  store: Store;
  replicaId: string;
  /** Set once the bus is up (it needs the pool to deliver its events). */
  bus: ReplicaBus;
  maxResultBytes: number;
  keys: CurveKeyPair;
  options: ServiceOptions;
  onResults: NonNullable<ForwarderOptions['onResults']>;
  log: Logger;
}

/** The forwarders, one per endpoint, created on registration (or at start for recently seen endpoints). */
export class ForwarderPool implements ForwarderDirectory {
  private readonly forwarders = new Map<string, Forwarder>();
  private readonly creating = new Map<string, Promise<Forwarder>>();

  constructor(private readonly p: PoolOptions) {}

  get(endpointId: string): Forwarder | undefined {
    return this.forwarders.get(endpointId);
  }

  /** This replica's name (saved with the endpoints it serves). */
  get replicaId(): string {
    return this.p.replicaId;
  }

  async ensure(endpoint: Pick<EndpointRecord, 'id' | 'publicKey' | 'ports'>): Promise<Forwarder> {
    await this.creating.get(endpoint.id)?.catch(() => undefined);
    let forwarder = this.forwarders.get(endpoint.id);
    if (forwarder && forwarder.endpointPublicKey !== endpoint.publicKey) {
      // A new key: ZAP only vets new connections, and those made with the old key would stay served. Close
      // them all with the forwarder and open a new one (on the same ports when they are free again).
      this.p.log.info(`endpoint ${endpoint.id} has a new key: closing every connection made with the old one`);
      endpoint = { ...endpoint, ports: { ...forwarder.ports } };
      this.forwarders.delete(endpoint.id);
      await forwarder.close();
      forwarder = undefined;
    }
    if (!forwarder) {
      let creating = this.creating.get(endpoint.id);
      if (!creating) {
        const o = this.p.options;
        creating = Forwarder.create({
          endpointId: endpoint.id,
          store: this.p.store,
          keys: this.p.keys,
          endpointPublicKey: endpoint.publicKey,
          host: o.forwarderHost ?? o.host ?? '127.0.0.1',
          advertiseHost: o.forwarderAdvertiseHost,
          preferredPorts: endpoint.ports,
          portRange: o.forwarderPortRange,
          heartbeatPeriodMs: o.heartbeatPeriodMs,
          heartbeatThresholdMs: o.heartbeatThresholdMs,
          maxResultBytes: this.p.maxResultBytes,
          onResults: this.p.onResults,
          log: this.p.log.child(`forwarder ${endpoint.id.slice(0, 8)}`),
        })
          .then((f) => {
            this.forwarders.set(endpoint.id, f);
            // This replica serves the endpoint now: one that did before lets go of it.
            this.tellOthers(endpoint.id);
            return f;
          })
          .finally(() => this.creating.delete(endpoint.id));
        this.creating.set(endpoint.id, creating);
      }
      forwarder = await creating;
    }
    return forwarder;
  }

  /** Tasks were queued for the endpoint: wake its forwarder here, or the replica that serves it. */
  notify(endpointId: string): void {
    const forwarder = this.forwarders.get(endpointId);
    if (forwarder) forwarder.notify();
    else void this.p.bus.publishTasks([endpointId]).catch((err) => this.p.log.warn(`cannot tell the other replicas about new tasks: ${(err as Error).message}`));
  }

  /** Another replica queued tasks, or notifications may have been missed: forwarders here look at their queues. */
  wake(endpointIds?: readonly string[]): void {
    if (!endpointIds) for (const f of this.forwarders.values()) f.notify();
    else for (const id of endpointIds) this.forwarders.get(id)?.notify();
  }

  /** Another replica serves the endpoint now: close ours without recording a state (the other one does). */
  async release(endpointId: string): Promise<void> {
    await this.creating.get(endpointId)?.catch(() => undefined);
    const forwarder = this.forwarders.get(endpointId);
    if (!forwarder) return;
    this.forwarders.delete(endpointId);
    this.p.log.info(`endpoint ${endpointId} registered with another replica: closing its forwarder here`);
    await forwarder.close({ recordState: false });
  }

  forgetFunction(functionId: string): void {
    for (const f of this.forwarders.values()) f.forgetFunction(functionId);
  }

  async remove(endpointId: string): Promise<void> {
    await this.creating.get(endpointId)?.catch(() => undefined);
    const forwarder = this.forwarders.get(endpointId);
    this.forwarders.delete(endpointId);
    this.tellOthers(endpointId);
    await forwarder?.close();
  }

  /** Other replicas close their forwarder for this endpoint (it moved here, or was deleted). */
  private tellOthers(endpointId: string): void {
    void this.p.bus.publishClaim(endpointId).catch((err) => this.p.log.warn(`cannot tell the other replicas about endpoint ${endpointId}: ${(err as Error).message}`));
  }

  get size(): number {
    return this.forwarders.size;
  }

  /**
   * Close the forwarders of endpoints gone (not Active) for `idleMs`: their ports and ZeroMQ contexts come
   * back. The endpoint's record stays; its next registration opens a forwarder again (on the same ports
   * when they are free), and tasks queued meanwhile wait in the store. Returns the endpoints closed.
   */
  async reapIdle(idleMs: number, now = Date.now()): Promise<string[]> {
    const idle = [...this.forwarders].filter(([id, f]) => f.state !== 'Active' && now - f.quietSince >= idleMs && !this.creating.has(id));
    for (const [id, f] of idle) {
      if (this.forwarders.get(id) !== f) continue;
      this.forwarders.delete(id);
      this.p.log.info(`endpoint ${id} has been gone for ${Math.round((now - f.quietSince) / 1000)} s: closing its forwarder (it reopens at the next registration)`);
      await f.close();
    }
    return idle.map(([id]) => id);
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.creating.values()]);
    await Promise.all([...this.forwarders.values()].map((f) => f.close()));
    this.forwarders.clear();
  }
}

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
  app.setNotFoundHandler((request, reply) => {
    const body: ErrorBody = { statusCode: 404, code: 'NOT_FOUND', message: `no route ${request.method} ${request.url}` };
    void reply.code(404).send(body);
  });
  app.setErrorHandler((thrown: FastifyError | Error, request, reply) => {
    // The store's quota refusal becomes the API's 429.
    const err = thrown instanceof QuotaExceededError ? quotaExceeded(thrown) : thrown;
    let status = 500;
    let code = 'INTERNAL';
    let message = err.message;
    let details: Record<string, unknown> = {};
    if (err instanceof HttpError) {
      status = err.statusCode;
      code = err.code;
      details = err.details;
      for (const [k, v] of Object.entries(err.headers)) void reply.header(k, v);
    } else if ((err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      const limit = request.routeOptions.bodyLimit ?? ctx.limits.maxBodyBytes;
      status = 413;
      code = 'BODY_TOO_LARGE';
      message = `the request body is larger than ${limit} bytes, the limit of ${request.method} ${request.routeOptions.url ?? request.url}`;
      details = { limit };
      // fastify closes the connection with the body unread; read and drop it instead, so the client hears this.
      const announced = Number(request.headers['content-length']);
      if (Number.isSafeInteger(announced) && announced <= ctx.limits.lingerBodyBytes) void reply.removeHeader('connection');
    } else if (err instanceof StoreUnavailableError) {
      // The database is restarting or unreachable: nothing was changed, the client may simply retry.
      status = 503;
      code = err.code;
      void reply.header('retry-after', String(RETRY_AFTER_SECONDS));
      ctx.log.warn(`${request.method} ${request.url}: 503: ${err.message}`);
    } else if (err instanceof FuncxError) {
      code = err.code;
      status = { ENDPOINT_NOT_CONNECTED: 409, COMMAND_TIMEOUT: 504, FORWARDER_BIND: 503 }[err.code] ?? 500;
    } else if (typeof (err as FastifyError).statusCode === 'number' && (err as FastifyError).statusCode! < 500) {
      // fastify's own 4xx: bad JSON, body too large, wrong content type.
      status = (err as FastifyError).statusCode!;
      code = (err as FastifyError).code ?? 'BAD_REQUEST';
    } else {
      ctx.log.error(`${request.method} ${request.url}: ${err.stack ?? err.message}`);
      message = `internal error: ${err.message}`;
    }
    const body: ErrorBody = { statusCode: status, code, message, ...details };
    void reply.code(status).send(body);
  });
  return app;
}

/** The PEM files of `--tls-cert/--tls-key`, or an error naming the one that cannot be read. */
function readTls(tls: { cert: string; key: string }): { cert: Buffer; key: Buffer } {
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new FuncxError('CONFIG', `cannot read the TLS ${what} ${path}: ${(err as Error).message}`);
    }
  };
  return { cert: read(tls.cert, 'certificate'), key: read(tls.key, 'key') };
}

/** Open the state, re-create recent forwarders, and listen. */
export async function startService(options: ServiceOptions): Promise<RunningService> {
  const log = options.log ?? createLogger('service');
  mkdirSync(options.home, { recursive: true, mode: 0o700 });
  const keysDir = join(options.home, 'keys');
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  chmodSync(keysDir, 0o700);
  const keys = options.forwarderKeyFile ? sharedForwarderKeys(options.forwarderKeyFile) : loadOrCreateKeyPair(join(keysDir, 'forwarder.json'));
  const store = await openStore(options.database ?? join(options.home, 'service.db'), {
    onIdleError: (err) => log.warn(`database connection lost: ${err.message}`),
  });
  const replicaId = options.replicaId ?? loadOrCreateReplicaId(options.home);
  const waiters = new ResultWaiters();
  const limits = resolveLimits(options);
  const pool: PoolOptions = {
    store, keys, options, log, replicaId, bus: localBus, maxResultBytes: limits.maxResultBytes,
    // Other replicas hear of results from the statement that stores them (PgStore.announceResultsOn).
    onResults: (ids, outcome) => waiters.notify(ids, outcome),
  };
  const forwarders = new ForwarderPool(pool);
  const tokenWatch = new TokenWatch(store, options.tokenRecheckMs);
  if (store instanceof PgStore) {
    try {
      pool.bus = await PgReplicaBus.start(store, replicaId, {
        tasksQueued: (ids) => forwarders.wake(ids),
        resultsStored: (ids) => waiters.notify(ids),
        endpointClaimed: (id) => void forwarders.release(id),
        tokensChanged: () => tokenWatch.changed(),
        missed: () => {
          tokenWatch.changed();
          forwarders.wake();
          void recheckWaiters(store, waiters).catch((err) => log.warn(`cannot re-read long-polled tasks: ${(err as Error).message}`));
        },
      }, log.child('bus'));
    } catch (err) {
      await store.close();
      throw err;
    }
  }
  const host = options.host ?? '127.0.0.1';
  const ctx: ServiceContext = {
    store,
    forwarders,
    waiters,
    maxWaitSeconds: options.maxWaitSeconds ?? 60,
    limits,
    quotas: resolveQuotas(options.quotas),
    taskRate: new TaskRateLimiter(limits.taskRatePerUser, limits.maxBatch),
    functionRate: new TaskRateLimiter(limits.functionRateBytesPerUser, limits.maxFunctionBodyBytes),
    tokenWatch,
    log,
  };
  const app = buildApp(ctx, options.tls ? readTls(options.tls) : undefined);
  const dashboard = installDashboard(app, { ctx, waiters, home: options.home, host });
  const idleCloseMs = options.forwarderIdleCloseMs ?? DEFAULT_FORWARDER_IDLE_CLOSE_MS;
  const reaper = idleCloseMs > 0
    ? setInterval(() => void forwarders.reapIdle(idleCloseMs).catch((err) => log.warn(`closing idle forwarders: ${(err as Error).message}`)),
      Math.max(50, Math.min(idleCloseMs / 4, 60_000))).unref()
    : undefined;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    if (reaper) clearInterval(reaper);
    waiters.releaseAll();
    ctx.tokenWatch?.close();
    await app.close().catch((err) => log.warn(`closing HTTP: ${(err as Error).message}`));
    await forwarders.closeAll();
    await pool.bus.close();
    await store.close();
  };
  try {
    // Nobody is connected to a service that is only starting.
    // This replica's endpoints (or, from before replicas, unclaimed ones); the others' are theirs.
    const endpoints = (await store.allEndpoints()).filter((e) => e.replica === replicaId || e.replica === null);
    for (const e of endpoints) if (e.state !== 'Inactive') await store.setEndpointState(e.id, 'Inactive');
    // Endpoints seen lately get their forwarder back on the same ports, so they reconnect by themselves.
    const since = Date.now() - (options.restoreWithinMs ?? 7 * 24 * 3600 * 1000);
    for (const e of endpoints) {
      if (e.ports && e.lastSeen !== null && e.lastSeen >= since) {
        await forwarders.ensure(e).catch((err) => log.warn(`cannot restore the forwarder of ${e.id}: ${(err as Error).message}`));
      }
    }
    await app.listen({ host, port: options.port ?? 8080 });
  } catch (err) {
    await close();
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') {
      throw new FuncxError('PORT_IN_USE', `cannot listen on ${host}:${options.port ?? 8080}: the port is in use`, ['choose another with --port']);
    }
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 8080);
  const url = `${options.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info(`listening on ${url} (protocol ${PROTOCOL_VERSION}, ${forwarders.size} forwarders restored)`);
  return { url, host, port, store, forwarders, waiters, replicaId, app, dashboard, close };
}

/**
 * The forwarder key pair every replica of a facility presents (`--forwarder-key FILE`): an endpoint pins the
 * key it first learns, so replicas behind one address must share it, as they share the TLS key. The file must
 * exist and be readable by its owner only; the secret never goes into the database or its backups.
 */
function sharedForwarderKeys(file: string): CurveKeyPair {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (err) {
    throw new FuncxError('CONFIG', `--forwarder-key ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (copy keys/forwarder.json of the first replica, 0600)' : (err as Error).message}`);
  }
  if (mode & 0o077) {
    throw new FuncxError('CONFIG', `--forwarder-key ${file}: readable by others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  }
  return readKeyPair(file);
}

/** This replica's stable name (HOME/replica-id, created once). */
function loadOrCreateReplicaId(home: string): string {
  const path = join(home, 'replica-id');
  if (existsSync(path)) {
    const id = readFileSync(path, 'utf8').trim();
    if (/^[A-Za-z0-9._:-]{1,100}$/.test(id)) return id;
  }
  const id = randomUUID();
  writeFileSync(path, id + '\n', { mode: 0o600 });
  return id;
}

/** Wake the long-polls whose tasks finished while notifications could not arrive. */
async function recheckWaiters(store: Store, waiters: ResultWaiters): Promise<void> {
  const ids = waiters.pendingIds();
  if (ids.length === 0) return;
  const finished = [...(await store.tasks(ids)).values()].filter((t) => t.state === 'success' || t.state === 'failed');
  if (finished.length > 0) waiters.notify(finished.map((t) => t.id));
}
