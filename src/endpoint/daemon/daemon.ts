/**
 * The endpoint daemon's life: take the lease, load the profile, register, start the engine, connect the
 * three forwarder channels, and serve until stopped. Tasks from the forwarder go to the engine; results go
 * back through the forwarder client, which keeps them on disk until acknowledged.
 *
 * State: starting → active → stopping → stopped (or failed).
 */
import { createWriteStream } from 'node:fs';
import { hostname } from 'node:os';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FuncxHome, writeJsonAtomic } from './home.js';
import { acquireLease, readLease, writeLease, LEASE_REFRESH_MS } from './lease.js';
import { loadGlobalOptions } from '../../config/global-options.js';
import { loadProfile } from '../../config/load.js';
import { Engine, type EngineStatus } from '../engine/engine.js';
import { registerEndpoint } from '../service-link/registration.js';
import { ForwarderClient } from '../service-link/forwarder-client.js';
import { loadOrCreateKeyPair } from '../../protocol/keys.js';
import { createLogger, type Logger } from '../../logger.js';
import { FuncxError } from '../../errors.js';

export type DaemonState = 'starting' | 'active' | 'stopping' | 'stopped' | 'failed';

export interface DaemonOptions {
  home: FuncxHome;
  name: string;
  serviceUrl: string;
  token: string;
  /** Global endpoint_address (used when the profile's engine sets none). */
  endpointAddress?: string;
  /** Told once when the endpoint is Active, or why it failed to start. */
  report?: (message: { kind: 'active'; id: string } | { kind: 'failed'; code: string; message: string }) => void;
  /** Log to stderr as well as endpoint.log (foreground runs). */
  echo?: boolean;
}

/** What `status` reads: written beside the lease every few seconds. */
export interface StatusFile {
  name: string;
  id: string;
  host: string;
  pid: number;
  state: DaemonState;
  writtenAt: number;
  forwarderConnected: boolean;
  engine: EngineStatus;
}

/** How often status.json is rewritten (what `funcx-endpoint status` shows). */
const STATUS_REFRESH_MS = 1000;

/** Tasks the endpoint keeps in hand from the forwarder (credit window). */
const TASK_WINDOW = 20_000;

export async function runDaemon(options: DaemonOptions): Promise<void> {
  const { home, name } = options;
  const dir = home.endpointDir(name);
  const logStream = createWriteStream(home.logFile(name), { flags: 'a', mode: 0o600 });
  const log: Logger = createLogger(`endpoint ${name}`, undefined, (line) => {
    logStream.write(line + '\n');
    if (options.echo) process.stderr.write(line + '\n');
  });
  let state: DaemonState = 'starting';
  const setState = (next: DaemonState): void => {
    log.info(`state ${state} → ${next}`);
    state = next;
  };
  const pidFile = home.pidFile(name);
  const statusFile = join(dir, 'status.json');

  const lease = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), refreshedAt: new Date().toISOString(), port: 0 };
  const taken = acquireLease(pidFile, lease);
  if (!taken.ok) {
    const message = `endpoint ${name} is already running on host ${taken.holder.host} (pid ${taken.holder.pid})`;
    options.report?.({ kind: 'failed', code: 'ALREADY_RUNNING', message });
    throw new FuncxError('ALREADY_RUNNING', message);
  }

  let engine: Engine | undefined;
  let forwarder: ForwarderClient | undefined;
  let endpointId = '';
  const timers: NodeJS.Timeout[] = [];

  const writeStatus = (): void => {
    if (!engine) return;
    const status: StatusFile = {
      name, id: endpointId, host: lease.host, pid: process.pid, state, writtenAt: Date.now(),
      forwarderConnected: forwarder?.isConnected ?? false, engine: engine.status(),
    };
    try {
      writeJsonAtomic(statusFile, status, 0o644);
    } catch (err) {
      log.warn(`cannot write ${statusFile}: ${(err as Error).message}`);
    }
  };

  let stopping: Promise<void> | undefined;
  const stop = (reason: string, graceMs = 10_000): Promise<void> => {
    stopping ??= (async () => {
      setState('stopping');
      log.info(`stopping: ${reason}`);
      for (const t of timers) clearInterval(t);
      // Unfinished tasks stay unanswered at the forwarder, which redelivers them when we come back.
      const unfinished = (await engine?.stop({ graceMs }).catch((err: Error) => (log.error(`engine stop: ${err.message}`), []))) ?? [];
      if (unfinished.length) log.info(`${unfinished.length} unfinished task(s) left for redelivery`);
      await forwarder?.close().catch(() => {});
      setState('stopped');
      writeStatus();
      // Give up the lease only if it is still ours.
      if (readLease(pidFile)?.pid === process.pid) rmSync(pidFile, { force: true });
      await new Promise<void>((r) => logStream.end(r));
    })();
    return stopping;
  };

  try {
    const config = await loadProfile(dir);
    mkdirSync(home.keysDir(name), { recursive: true, mode: 0o700 });
    const keys = loadOrCreateKeyPair(join(home.keysDir(name), 'endpoint.json'));
    const previous = home.readEndpointInfo(name);
    const { username, email } = await loadGlobalOptions(home);
    const metadata = { username, email };
    const register = () =>
      registerEndpoint(options.serviceUrl, options.token, { name, endpointId: previous?.id ?? (endpointId || undefined), publicKey: keys.publicKey, metadata });
    const registration = await register();
    endpointId = registration.endpointId;
    home.writeEndpointInfo(name, { id: endpointId, name, serviceUrl: options.serviceUrl, metadata });
    log.info(`registered as ${endpointId}; forwarder at ${registration.forwarder.host}`);

    engine = new Engine({ config, name, keysDir: home.keysDir(name), endpointAddress: options.endpointAddress, log });
    await engine.start();
    lease.port = engine.interchange.port;
    writeLease(pidFile, lease);

    forwarder = new ForwarderClient({
      endpointId,
      forwarder: registration.forwarder,
      keys,
      resultsDir: home.outboxDir(name),
      window: TASK_WINDOW,
      reregister: async () => (await register()).forwarder,
      log: log.child('forwarder'),
    });
    const fc = forwarder;
    const eng = engine;
    fc.on('tasks', (tasks) => eng.submitMany(tasks));
    eng.onResults = (results) => {
      fc.sendResults(results).catch((err: Error) => log.error(`results not stored: ${err.message}`));
    };
    eng.interchange.onDispatched = (tasks) => fc.markRunning(tasks.map((t) => t.id));
    fc.on('command', (command, reply) => {
      if (command.name === 'status') {
        reply({ ok: true, result: eng.status() });
      } else if (command.name === 'stop') {
        reply({ ok: true });
        void stop('the service asked us to stop', command.graceMs).then(() => process.exit(0));
      } else {
        reply({ ok: false, error: `unknown command ${JSON.stringify(command)}` });
      }
    });
    fc.on('lost', (reason) => log.warn(`forwarder lost: ${reason}; reconnecting`));
    fc.on('connected', () => log.info('forwarder channels connected'));
    fc.on('refused', (reason) => {
      log.error(`the forwarder refused us: ${reason}`);
      void stop(`refused by the forwarder: ${reason}`, 0).then(() => process.exit(1));
    });
    await fc.start();

    timers.push(setInterval(() => {
      lease.refreshedAt = new Date().toISOString();
      writeLease(pidFile, lease);
    }, LEASE_REFRESH_MS));
    timers.push(setInterval(writeStatus, STATUS_REFRESH_MS));
    // Managers coming and going change what `status` shows: write soon after, not only on the next second.
    let statusSoon: NodeJS.Timeout | null = null;
    const writeStatusSoon = (): void => {
      statusSoon ??= setTimeout(() => {
        statusSoon = null;
        writeStatus();
      }, 50);
    };
    for (const event of ['manager-registered', 'manager-lost', 'manager-gone'] as const) eng.interchange.on(event, writeStatusSoon);
    setState('active');
    writeStatus();
    options.report?.({ kind: 'active', id: endpointId });
  } catch (err) {
    const e = err as FuncxError;
    log.error(`failed to start: ${e.message}`);
    setState('failed');
    // Clean up (lease, blocks) before telling the parent, so what it sees after our answer is final.
    await stop('failed to start', 0);
    options.report?.({ kind: 'failed', code: e.code ?? 'START_FAILED', message: e.message });
    throw err;
  }

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => void stop(`received ${signal}`).then(() => process.exit(0)));
  }
}
