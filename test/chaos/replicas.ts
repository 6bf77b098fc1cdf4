/**
 * Service replicas for the PostgreSQL chaos cases: real `funcx-service start --foreground` processes, each
 * with its own FUNCX_SERVICE_HOME inside the rig's folder, on one database, as README "Running the service
 * for a facility" sets them up (the later ones given the first one's keys/forwarder.json with
 * --forwarder-key). Their output goes to HOME/service.log.
 *
 *   const a = await Replica.start(rig, 'replica-a', url);
 *   const b = await Replica.start(rig, 'replica-b', url, { forwarderKeyFile: a.forwarderKeyFile });
 *   ... a.replicaId() ... a.child.pid ... await a.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { untilValue } from '../helpers/wait.js';
import { isAlive, until } from './procs.js';
import type { Rig } from './harness.js';

const SERVICE_CLI = fileURLToPath(new URL('../../src/cli/service.js', import.meta.url));

/** How long a replica may take to listen (it runs the migrations under an advisory lock first). */
const REPLICA_START_MS = 60_000;
/** SIGTERM, then SIGKILL after this long. */
const REPLICA_STOP_MS = 10_000;

export interface ReplicaOptions {
  /** --forwarder-key: the first replica's keys/forwarder.json (default: the replica makes its own). */
  forwarderKeyFile?: string;
  /** --heartbeat-period-ms and --heartbeat-threshold-ms of its forwarders (default: the service's). */
  heartbeat?: { periodMs: number; thresholdMs: number };
}

export class Replica {
  private constructor(
    readonly name: string,
    readonly home: string,
    readonly child: ChildProcess,
    readonly url: string,
  ) {}

  /** Start `funcx-service start --foreground --port 0` in ROOT/NAME on `database`; resolves once it listens. */
  static async start(rig: Rig, name: string, database: string, o: ReplicaOptions = {}): Promise<Replica> {
    const home = join(rig.root, name);
    mkdirSync(home, { recursive: true, mode: 0o700 });
    const args = ['start', '--foreground', '--port', '0'];
    if (o.forwarderKeyFile) args.push('--forwarder-key', o.forwarderKeyFile);
    if (o.heartbeat) args.push('--heartbeat-period-ms', String(o.heartbeat.periodMs), '--heartbeat-threshold-ms', String(o.heartbeat.thresholdMs));
    const logFile = join(home, 'service.log');
    const log = openSync(logFile, 'a', 0o600);
    // The database URL goes through the environment, as `funcx-service start` passes it to its detached child.
    const child = spawn(process.execPath, [SERVICE_CLI, ...args], {
      env: { ...rig.env, FUNCX_SERVICE_HOME: home, FUNCX_DATABASE_URL: database },
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    const readLog = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
    const url = await untilValue(`${name} to listen (${logFile})`, () => (child.exitCode !== null ? 'exited' : /listening on (http:\/\/\S+)/.exec(readLog())?.[1]), {
      timeoutMs: REPLICA_START_MS,
      everyMs: 50,
    });
    if (url === undefined || url === 'exited') throw new Error(`${name} exited (${child.exitCode}): ${readLog().trim().split('\n').slice(-3).join(' | ')}`);
    return new Replica(name, home, child, url);
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name} has no pid`);
    return this.child.pid;
  }

  get port(): number {
    return Number(new URL(this.url).port);
  }

  /** The key file the other replicas are given (--forwarder-key). */
  get forwarderKeyFile(): string {
    return join(this.home, 'keys', 'forwarder.json');
  }

  /** The id this replica writes into `endpoints.replica` for the endpoints it serves (HOME/replica-id). */
  replicaId(): string {
    return readFileSync(join(this.home, 'replica-id'), 'utf8').trim();
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null && isAlive(this.pid);
  }

  /** SIGTERM (a replica stopping the way an operator stops it), SIGKILL when it lingers; no-op when dead. */
  async stop(): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const exited = await until(`${this.name} to exit after SIGTERM`, () => !this.alive, { timeoutMs: REPLICA_STOP_MS }).then(() => true, () => false);
    if (!exited) this.child.kill('SIGKILL');
  }

  /** The last lines of its log (for reports). */
  logTail(lines = 10): string {
    const file = join(this.home, 'service.log');
    return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n') : '(no service.log)';
  }
}
