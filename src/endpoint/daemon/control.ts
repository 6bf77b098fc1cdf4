/**
 * The CLI's side of the daemon: start it detached and wait until it is Active (or say why not), and stop it
 * in one call (SIGTERM, a grace period for draining and cancelling blocks, then SIGKILL).
 */
import { fork } from 'node:child_process';
import { openSync, closeSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { FuncxHome } from './home.js';
import { readLease, readLeaseFile, leaseIsLive, processExists, removeStaleLease } from './lease.js';
import { FuncxError } from '../../errors.js';
import { profilingArgs, semiSpaceArgs } from '../../worker/worker-pool.js';
import { DAEMON_SEMI_SPACE_MB } from '../../config/defaults.js';

const DAEMON_JS = fileURLToPath(new URL('../../cli/endpoint-daemon.js', import.meta.url));

export interface StartOptions {
  serviceUrl: string;
  token: string;
  endpointAddress?: string;
  /** Give up waiting for Active after this long. @default 30000 */
  timeoutMs?: number;
}

/** The first IPC message to the daemon: what must not travel through its environment or argv. */
export interface DaemonSecrets {
  kind: 'secrets';
  token: string;
}

/** The daemon's environment without the user's token: blocks and their workers inherit it. */
function withoutSecrets(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy.FUNCX_TOKEN;
  return copy;
}

/** Only the owner of a profile may start it (the seed's rule). */
export function checkOwner(home: FuncxHome, name: string): void {
  const dir = home.endpointDir(name);
  const uid = process.getuid?.();
  const owner = statSync(dir).uid;
  if (uid !== undefined && owner !== uid) {
    throw new FuncxError('NOT_OWNER', `endpoint ${name} (${dir}) belongs to uid ${owner}; only its owner may start it`);
  }
}

/** Refuse while a live lease exists, naming who holds it; clear a stale one (atomically: see lease.ts). */
export function checkNotRunning(home: FuncxHome, name: string): void {
  const seen = readLeaseFile(home.pidFile(name));
  const lease = seen?.lease;
  if (seen && lease && leaseIsLive(lease)) {
    const where = lease.host === hostname() ? `pid ${lease.pid}` : `host ${lease.host} (pid ${lease.pid})`;
    throw new FuncxError('ALREADY_RUNNING', `endpoint ${name} is already running (${where})`, [`funcx-endpoint stop ${name}`]);
  }
  if (seen) removeStaleLease(home.pidFile(name), seen);
}

/** Remove the lease file if it is stale now (never one a new daemon has just taken). */
function clearStaleLease(file: string): void {
  const seen = readLeaseFile(file);
  if (seen && !(seen.lease && leaseIsLive(seen.lease))) removeStaleLease(file, seen);
}

/** Start the daemon detached; resolves with the endpoint id once it is Active. */
export async function startDaemon(home: FuncxHome, name: string, options: StartOptions): Promise<{ id: string; pid: number }> {
  checkOwner(home, name);
  checkNotRunning(home, name);
  const logFd = openSync(home.logFile(name), 'a', 0o600);
  const child = fork(DAEMON_JS, [name], {
    detached: true,
    execArgv: [...process.execArgv, ...semiSpaceArgs(DAEMON_SEMI_SPACE_MB), ...profilingArgs()], // FUNCX_CPU_PROFILE_DIR profiles the daemon too
    stdio: ['ignore', logFd, logFd, 'ipc'],
    env: {
      ...withoutSecrets(process.env),
      FUNCX_HOME: home.root,
      FUNCX_DAEMON_SERVICE_URL: options.serviceUrl,
      FUNCX_DAEMON_ENDPOINT_ADDRESS: options.endpointAddress ?? '',
    },
  });
  closeSync(logFd);
  // The token goes over the IPC pipe, never the environment (which /proc/PID/environ shows for the daemon's
  // whole life, and which blocks would inherit).
  child.send({ kind: 'secrets', token: options.token } satisfies DaemonSecrets);
  const timeoutMs = options.timeoutMs ?? 30_000;
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new FuncxError('START_TIMEOUT', `endpoint ${name} did not become Active within ${timeoutMs / 1000} s; see ${home.logFile(name)}`));
      }, timeoutMs);
      child.on('message', (m: { kind: string; id?: string; code?: string; message?: string }) => {
        clearTimeout(timer);
        if (m.kind === 'active') resolve({ id: m.id!, pid: child.pid! });
        else reject(new FuncxError(m.code ?? 'START_FAILED', m.message ?? 'the daemon failed to start'));
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new FuncxError('START_FAILED', `the endpoint daemon exited (code ${code}) before it was Active; see ${home.logFile(name)}`));
      });
    });
  } finally {
    child.removeAllListeners();
    if (child.connected) child.disconnect();
    child.unref();
  }
}

export interface StopResult {
  wasRunning: boolean;
  /** The daemon did not leave within the grace period and was killed. */
  killed: boolean;
  pid?: number;
}

const alive = processExists;

/** Stop the endpoint in one call. */
export async function stopDaemon(home: FuncxHome, name: string, options: { graceMs?: number } = {}): Promise<StopResult> {
  const lease = readLease(home.pidFile(name));
  if (!lease || !leaseIsLive(lease)) {
    clearStaleLease(home.pidFile(name));
    return { wasRunning: false, killed: false };
  }
  if (lease.host !== hostname()) {
    throw new FuncxError('WRONG_HOST', `endpoint ${name} runs on host ${lease.host} (pid ${lease.pid}); stop it there`);
  }
  const graceMs = options.graceMs ?? 15_000;
  process.kill(lease.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive(lease.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  let killed = false;
  if (alive(lease.pid)) {
    killed = true;
    try {
      process.kill(lease.pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
    while (alive(lease.pid)) await new Promise((r) => setTimeout(r, 20));
  }
  clearStaleLease(home.pidFile(name));
  return { wasRunning: true, killed, pid: lease.pid };
}
