/**
 * The funcX web service: a fastify app over the store (SQLite or PostgreSQL), one forwarder per endpoint, and long-polls
 * woken by the forwarders' "results stored" events. `startService` is what `funcx-service start` runs.
 * This file starts and stops it; app.ts builds the app (hooks, routes, error-handler.ts), forwarder/pool.ts
 * holds the forwarders, service-options.ts the options, service-home.ts the files it reads from its home.
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
import type { FastifyInstance } from 'fastify';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PROTOCOL_VERSION } from '../protocol/forwarder-messages.js';
import { loadOrCreateKeyPair } from '../protocol/keys.js';
import { FuncxError } from '../errors.js';
import { createLogger } from '../logger.js';
import { TaskRateLimiter } from './task-rate.js';
import { ForwarderPool, type PoolOptions } from './forwarder/pool.js';
import { openStore, PgStore, type Store } from './store/index.js';
import { resolveLimits, resolveQuotas, SERVICE_DEFAULTS } from './limits.js';
import { PgReplicaBus } from './store/pg-bus.js';
import { localBus } from './replica-bus.js';
import type { ServiceContext } from './routes/context.js';
import { ResultWaiters } from './routes/long-poll.js';
import { TokenWatch } from './token-watch.js';
import { installDashboard, type Dashboard } from './dashboard/install.js';
import { buildApp } from './app.js';
import { loadOrCreateReplicaId, readTls, sharedForwarderKeys } from './service-home.js';
import type { ServiceOptions } from './service-options.js';

export { buildApp, PROTOCOL_HEADER } from './app.js';
export { ForwarderPool } from './forwarder/pool.js';
export type { ServiceOptions } from './service-options.js';

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
    maxWaitSeconds: options.maxWaitSeconds ?? SERVICE_DEFAULTS.maxWaitSeconds,
    limits,
    quotas: resolveQuotas(options.quotas),
    taskRate: new TaskRateLimiter(limits.taskRatePerUser, limits.maxBatch),
    functionRate: new TaskRateLimiter(limits.functionRateBytesPerUser, limits.maxFunctionBodyBytes),
    tokenWatch,
    log,
  };
  const app = buildApp(ctx, options.tls ? readTls(options.tls) : undefined);
  const dashboard = installDashboard(app, { ctx, waiters, home: options.home, host });
  const idleCloseMs = options.forwarderIdleCloseMs ?? SERVICE_DEFAULTS.forwarderIdleCloseMs;
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
    const since = Date.now() - (options.restoreWithinMs ?? SERVICE_DEFAULTS.restoreWithinMs);
    for (const e of endpoints) {
      if (e.ports && e.lastSeen !== null && e.lastSeen >= since) {
        await forwarders.ensure(e).catch((err) => log.warn(`cannot restore the forwarder of ${e.id}: ${(err as Error).message}`));
      }
    }
    await app.listen({ host, port: options.port ?? SERVICE_DEFAULTS.port });
  } catch (err) {
    await close();
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') {
      throw new FuncxError('PORT_IN_USE', `cannot listen on ${host}:${options.port ?? SERVICE_DEFAULTS.port}: the port is in use`, ['choose another with --port']);
    }
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? SERVICE_DEFAULTS.port);
  const url = `${options.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info(`listening on ${url} (protocol ${PROTOCOL_VERSION}, ${forwarders.size} forwarders restored)`);
  return { url, host, port, store, forwarders, waiters, replicaId, app, dashboard, close };
}

/** Wake the long-polls whose tasks finished while notifications could not arrive. */
async function recheckWaiters(store: Store, waiters: ResultWaiters): Promise<void> {
  const ids = waiters.pendingIds();
  if (ids.length === 0) return;
  const finished = [...(await store.tasks(ids)).values()].filter((t) => t.state === 'success' || t.state === 'failed');
  if (finished.length > 0) waiters.notify(finished.map((t) => t.id));
}
