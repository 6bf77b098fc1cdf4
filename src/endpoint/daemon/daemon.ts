/**
 * The endpoint daemon's life: take the lease, load the profile, register, start the engine, connect the
 * three forwarder channels, and serve until stopped. Tasks from the forwarder go to the engine; results go
 * back through the forwarder client, which keeps them on disk until acknowledged.
 *
 * State (DAEMON_TRANSITIONS):
 *
 *   starting → registering → engine-starting → connecting → running → stopping → stopped
 *       └───────────┴──────────────┴───────────────┴─────────────┘         └──→ failed
 *
 * A stop may come at any moment, signals included (handlers are installed before the lease is taken): the
 * start step in progress is abandoned and whatever it made is undone (an engine's blocks, init_blocks
 * included, are cancelled). `stop()` is idempotent: every caller awaits the same promise. A start that
 * failed, or a stop for a reason that is an error (the forwarder refused us), ends in `failed`, never
 * overwritten by `stopped`. This class never exits the process: the CLI entry point awaits `finished`.
 */
import { createWriteStream, mkdirSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { FuncxHome, writeJsonAtomic } from './home.js';
import { acquireLease, readLease, writeLease, LEASE_REFRESH_MS, type Lease } from './lease.js';
import { loadGlobalOptions } from '../../config/global-options.js';
import { loadProfile } from '../../config/load.js';
import { Engine, type EngineStatus } from '../engine/engine.js';
import { registerEndpoint } from '../service-link/registration.js';
import { ForwarderClient } from '../service-link/forwarder-client.js';
import { loadOrCreateKeyPair } from '../../protocol/keys.js';
import { forwarderPinPath } from '../service-link/forwarder-pin.js';
import { createLogger, type Logger } from '../../logger.js';
import { FuncxError } from '../../errors.js';
import { Lifecycle, Once, type Transitions } from '../../lifecycle.js';
import { EndpointMetrics, serveMetrics } from './metrics.js';

export type DaemonState =
  | 'starting' // lease, profile, keys
  | 'registering' // asking the service for our id and the forwarder's address
  | 'engine-starting' // interchange bound, strategy's first tick (init_blocks) under way
  | 'connecting' // forwarder channels handshaking
  | 'running' // Active: serving tasks
  | 'stopping' // undoing whatever was started, in reverse
  | 'stopped' // stopped as asked
  | 'failed'; // stopped because of an error (start failed, refused by the forwarder, lease lost)

export const DAEMON_TRANSITIONS: Transitions<DaemonState> = {
  starting: ['registering', 'stopping'],
  registering: ['engine-starting', 'stopping'],
  'engine-starting': ['connecting', 'stopping'],
  connecting: ['running', 'stopping'],
  running: ['stopping'],
  stopping: ['stopped', 'failed'],
  stopped: [],
  failed: [],
};

export type DaemonReport = { kind: 'active'; id: string } | { kind: 'failed'; code: string; message: string };

export interface DaemonOptions {
  home: FuncxHome;
  name: string;
  serviceUrl: string;
  token: string;
  /** Global endpoint_address (used when the profile's engine sets none). */
  endpointAddress?: string;
  /** Told once when the endpoint is Active, or why it failed to start. */
  report?: (message: DaemonReport) => void;
  /** Log to stderr as well as endpoint.log (foreground runs). */
  echo?: boolean;
  /** Stop on SIGTERM and SIGINT (installed before the lease is taken, removed once stopped). @default true */
  handleSignals?: boolean;
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
  /** The port /metrics is served on (profile `metrics_port`), null when off. */
  metricsPort?: number | null;
  engine: EngineStatus;
}

/** The package's version, for the service's dashboard. */
const PACKAGE_VERSION: string = (() => {
  for (const rel of ['../../../../package.json', '../../../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      // try the next level
    }
  }
  return 'unknown';
})();

/** How often status.json is rewritten (what `funcx-endpoint status` shows). */
const STATUS_REFRESH_MS = 1000;

/** Tasks the endpoint keeps in hand from the forwarder (credit window). */
const TASK_WINDOW = 20_000;

/** Thrown inside start() when a stop came while it was under way. */
class StartAbandoned extends FuncxError {
  constructor(reason: string) {
    super('STOPPED', `stopped while starting: ${reason}`);
  }
}

export class EndpointDaemon {
  readonly life: Lifecycle<DaemonState>;
  readonly log: Logger;
  private readonly dir: string;
  private readonly pidFile: string;
  private readonly statusFile: string;
  private readonly logStream: WriteStream;
  private readonly lease: Lease;
  private readonly stopping = new Once<DaemonState>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly signalHandlers: Array<[NodeJS.Signals, () => void]> = [];
  /** Aborted when the stop begins: a registration under way is abandoned then, not at its timeout. */
  private readonly stopSignal = new AbortController();
  private engine: Engine | undefined;
  private forwarder: ForwarderClient | undefined;
  private metrics: EndpointMetrics | undefined;
  private metricsServer: { port: number; close: () => Promise<void> } | undefined;
  private readonly metricsClosing = new Once();
  private readonly startedAt = Date.now();
  private endpointId = '';
  private failure: FuncxError | undefined;
  private stopReason = '';
  private finish!: (state: DaemonState) => void;
  /** Resolves with `stopped` or `failed` once the daemon has stopped and cleaned up. */
  readonly finished: Promise<DaemonState>;

  constructor(private readonly options: DaemonOptions) {
    const { home, name } = options;
    this.dir = home.endpointDir(name);
    this.pidFile = home.pidFile(name);
    this.statusFile = join(this.dir, 'status.json');
    this.logStream = createWriteStream(home.logFile(name), { flags: 'a', mode: 0o600 });
    this.log = createLogger(`endpoint ${name}`, undefined, (line) => {
      if (!this.logStream.writableEnded) this.logStream.write(line + '\n');
      if (options.echo) process.stderr.write(line + '\n');
    });
    this.life = new Lifecycle<DaemonState>(`endpoint ${name}`, 'starting', DAEMON_TRANSITIONS, { log: this.log, level: 'info' });
    const now = new Date().toISOString();
    this.lease = { pid: process.pid, host: hostname(), startedAt: now, refreshedAt: now, port: 0 };
    this.finished = new Promise((resolve) => (this.finish = resolve));
  }

  get state(): DaemonState {
    return this.life.state;
  }

  get id(): string {
    return this.endpointId;
  }

  /**
   * Start; resolves once Active. Rejects when the start failed (the daemon is then `failed`, everything it
   * started undone) or a stop came first (then `stopped`, code STOPPED).
   */
  async start(): Promise<void> {
    if (this.options.handleSignals !== false) this.installSignalHandlers();
    try {
      await this.startSteps();
    } catch (err) {
      const e = err instanceof FuncxError ? err : new FuncxError('START_FAILED', (err as Error)?.message ?? String(err));
      if (this.stopping.started) {
        // A stop came first: what we were doing was abandoned on purpose, not a failure.
        await this.stopping.done;
        const message = this.failure?.message ?? `stopped while starting: ${this.stopReason}`;
        this.options.report?.({ kind: 'failed', code: this.failure?.code ?? 'STOPPED', message });
        throw this.failure ?? (e instanceof StartAbandoned ? e : new StartAbandoned(this.stopReason));
      }
      this.log.error(`failed to start: ${e.message}`);
      this.failure = e;
      // Clean up (lease, blocks) before telling the parent, so what it sees after our answer is final.
      await this.stop('failed to start', 0);
      this.options.report?.({ kind: 'failed', code: e.code ?? 'START_FAILED', message: e.message });
      throw e;
    }
    this.options.report?.({ kind: 'active', id: this.endpointId });
  }

  /** Move to `next` unless a stop came meanwhile: then abandon the start. */
  private step(next: DaemonState): void {
    if (this.stopping.started) throw new StartAbandoned(this.stopReason);
    this.life.to(next);
  }

  private async startSteps(): Promise<void> {
    const { home, name } = this.options;
    const taken = acquireLease(this.pidFile, this.lease);
    if (!taken.ok) {
      const message = `endpoint ${name} is already running on host ${taken.holder.host} (pid ${taken.holder.pid})`;
      throw new FuncxError('ALREADY_RUNNING', message);
    }
    const config = await loadProfile(this.dir);
    mkdirSync(home.keysDir(name), { recursive: true, mode: 0o700 });
    const keys = loadOrCreateKeyPair(join(home.keysDir(name), 'endpoint.json'));
    const previous = home.readEndpointInfo(name);
    const { username, email } = await loadGlobalOptions(home);
    const metadata = { username, email };
    // Sharing is the profile's: sent at every registration, so a restart never unshares and a profile
    // without shared_with registers the endpoint unshared.
    const sharing = { group: config.sharedWith ?? undefined, sharing: { allowedFunctions: config.allowedFunctions ? [...config.allowedFunctions] : null, anyFunction: config.othersRunAnyFunction } };
    const register = () =>
      registerEndpoint(this.options.serviceUrl, this.options.token, {
        name, endpointId: previous?.id ?? (this.endpointId || undefined), publicKey: keys.publicKey, metadata, ...sharing,
      }, { pinFile: forwarderPinPath(home.keysDir(name)), signal: this.stopSignal.signal });

    this.step('registering');
    const registration = await register();
    this.step('engine-starting');
    this.endpointId = registration.endpointId;
    home.writeEndpointInfo(name, { id: this.endpointId, name, serviceUrl: this.options.serviceUrl, metadata });
    this.log.info(`registered as ${this.endpointId}; forwarder at ${registration.forwarder.host}`);

    // From here on stop() undoes the engine (its blocks cancelled) whatever point of its start it reached.
    const engine = new Engine({ config, name, keysDir: home.keysDir(name), endpointAddress: this.options.endpointAddress, log: this.log });
    this.engine = engine;
    const metrics = new EndpointMetrics(engine);
    metrics.wrapProvider(config.provider);
    metrics.wrapStrategy(engine.strategy);
    this.metrics = metrics;
    await engine.start();
    if (config.metrics && !this.stopping.started) {
      this.metricsServer = await serveMetrics(metrics, config.metrics.host, config.metrics.port);
      this.log.info(`metrics on http://${config.metrics.host}:${this.metricsServer.port}/metrics`);
      // A stop that came while it opened may have passed its close already: close it (once) here.
      if (this.stopping.started) await this.closeMetrics();
    }
    this.step('connecting');
    this.lease.port = engine.interchange.port;
    writeLease(this.pidFile, this.lease);

    const fc = new ForwarderClient({
      endpointId: this.endpointId,
      forwarder: registration.forwarder,
      keys,
      resultsDir: home.outboxDir(name),
      window: TASK_WINDOW,
      reregister: async () => (await register()).forwarder,
      log: this.log.child('forwarder'),
    });
    this.forwarder = fc;
    this.wire(engine, fc);
    await fc.start();
    this.step('running');

    this.timers.push(setInterval(() => this.refreshLease(), LEASE_REFRESH_MS));
    this.timers.push(setInterval(() => this.writeStatus(), STATUS_REFRESH_MS));
    // Managers coming and going change what `status` shows: write soon after, not only on the next second.
    let statusSoon: NodeJS.Timeout | null = null;
    const writeStatusSoon = (): void => {
      statusSoon ??= setTimeout(() => {
        statusSoon = null;
        this.writeStatus();
      }, 50);
    };
    for (const event of ['manager-registered', 'manager-lost', 'manager-gone'] as const) engine.interchange.on(event, writeStatusSoon);
    this.writeStatus();
  }

  /** Tasks from the forwarder to the engine, results back, and the service's commands. */
  private wire(engine: Engine, fc: ForwarderClient): void {
    const metrics = this.metrics;
    fc.on('tasks', (tasks) => {
      metrics?.tasksReceived.inc(tasks.length);
      engine.submitMany(tasks);
    });
    engine.onResults = (results) => {
      if (metrics) {
        let failed = 0;
        for (const r of results) if (r.failed) failed++;
        if (failed) metrics.results.inc({ outcome: 'failed' }, failed);
        if (results.length > failed) metrics.results.inc({ outcome: 'success' }, results.length - failed);
      }
      fc.sendResults(results).catch((err: Error) => this.log.error(`results not stored: ${err.message}`));
    };
    engine.interchange.onDispatched = (tasks) => {
      metrics?.tasksDispatched.inc(tasks.length);
      fc.markRunning(tasks.map((t) => t.id));
    };
    fc.on('command', (command, reply) => {
      if (command.name === 'status') {
        // The engine's report plus who and where we are (the service's dashboard shows both).
        const daemon = { host: this.lease.host, pid: process.pid, startedAt: this.startedAt, version: PACKAGE_VERSION, metricsPort: this.metricsServer?.port ?? null };
        reply({ ok: true, result: { ...engine.status(), daemon } });
      } else if (command.name === 'stop') {
        reply({ ok: true });
        void this.stop('the service asked us to stop', command.graceMs);
      } else {
        reply({ ok: false, error: `unknown command ${JSON.stringify(command)}` });
      }
    });
    fc.on('lost', (reason) => this.log.warn(`forwarder lost: ${reason}; reconnecting`));
    fc.on('connected', () => this.log.info('forwarder channels connected'));
    fc.on('refused', (reason) => {
      this.log.error(`the forwarder refused us: ${reason}`);
      this.failure ??= new FuncxError('REFUSED', `the forwarder refused us: ${reason}`);
      void this.stop(`refused by the forwarder: ${reason}`, 0);
    });
  }

  /** Signals stop the daemon at any moment; a second signal while stopping joins the same stop. */
  private installSignalHandlers(): void {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const handler = (): void => {
        this.log.info(`received ${signal}${this.stopping.started ? ' (already stopping)' : ''}`);
        void this.stop(`received ${signal}`);
      };
      process.on(signal, handler);
      this.signalHandlers.push([signal, handler]);
    }
  }

  private refreshLease(): void {
    // A lease someone else holds now (we were frozen past LEASE_STALE_MS and another daemon took over) is
    // not ours to overwrite: step down.
    if (readLease(this.pidFile)?.pid !== process.pid) {
      this.failure ??= new FuncxError('LEASE_LOST', `the lease ${this.pidFile} was taken over by another daemon`);
      void this.stop('lost the lease', 0);
      return;
    }
    this.lease.refreshedAt = new Date().toISOString();
    writeLease(this.pidFile, this.lease);
  }

  private closeMetrics(): Promise<void> {
    const server = this.metricsServer;
    return server ? this.metricsClosing.run(() => server.close()) : Promise.resolve();
  }

  private writeStatus(): void {
    const engine = this.engine;
    if (!engine) return;
    const status: StatusFile = {
      name: this.options.name, id: this.endpointId, host: this.lease.host, pid: process.pid, state: this.life.state,
      writtenAt: Date.now(), forwarderConnected: this.forwarder?.isConnected ?? false,
      metricsPort: this.metricsServer?.port ?? null, engine: engine.status(),
    };
    try {
      writeJsonAtomic(this.statusFile, status, 0o644);
    } catch (err) {
      this.log.warn(`cannot write ${this.statusFile}: ${(err as Error).message}`);
    }
  }

  /**
   * Stop (idempotent: every caller awaits the same promise, the first caller's reason and grace apply).
   * Unfinished tasks stay unanswered at the forwarder, which redelivers them when we come back. Resolves
   * with the final state, `stopped` or `failed`.
   */
  stop(reason: string, graceMs = 10_000): Promise<DaemonState> {
    return this.stopping.run(async () => {
      this.stopReason = reason;
      this.life.to('stopping', reason);
      this.stopSignal.abort();
      for (const t of this.timers) clearInterval(t);
      const unfinished = (await this.engine?.stop({ graceMs }).catch((err: Error) => (this.log.error(`engine stop: ${err.message}`), []))) ?? [];
      if (unfinished.length) this.log.info(`${unfinished.length} unfinished task(s) left for redelivery`);
      await this.forwarder?.close().catch((err: Error) => this.log.error(`forwarder close: ${err.message}`));
      await this.closeMetrics();
      const end: DaemonState = this.failure ? 'failed' : 'stopped';
      this.life.to(end, this.failure?.message);
      this.writeStatus();
      // Give up the lease only if it is still ours.
      if (readLease(this.pidFile)?.pid === process.pid) rmSync(this.pidFile, { force: true });
      for (const [signal, handler] of this.signalHandlers) process.off(signal, handler);
      await new Promise<void>((r) => this.logStream.end(r));
      this.finish(end);
      return end;
    });
  }
}
