/**
 * `funcx-service start`: in the foreground (`--foreground`: listen, write the pid file, stop on SIGTERM/SIGINT),
 * or detached: the CLI starts itself in the foreground as a child, waits for its ready message and its
 * /v1/health, and returns with the service running (its output in HOME/service.log).
 */
import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { FuncxError } from '../../errors.js';
import { Exit } from '../handle.js';
import { startService } from '../../service/api.js';
import { DEFAULT_LIMITS, DEFAULT_QUOTAS, SERVICE_DEFAULTS, SERVICE_SEMI_SPACE_MB } from '../../service/limits.js';
import { profilingArgs, semiSpaceArgs } from '../../worker/worker-pool.js';
import { parseBytes } from '../service-tenancy.js';
import { idleClose, intOption, portRange } from './options.js';
import { healthy, readPidFile, refuseIfRunning, type PidFile } from './pid-file.js';
import { database, logPath, pidPath, serviceHome } from './state.js';

/** `start`'s options as commander parses them. */
interface StartFlags {
  database?: string;
  host: string;
  port: number;
  foreground?: boolean;
  forwarderHost?: string;
  forwarderPorts?: [number, number];
  heartbeatPeriodMs?: number;
  heartbeatThresholdMs?: number;
  maxResultBytes?: number;
  maxBatch?: number;
  rateTasks?: number;
  invitationDays?: number;
  invitesPerSender?: number;
  rateFunctionBytes?: number;
  quotaTasks?: number;
  quotaFunctions?: number;
  quotaEndpoints?: number;
  quotaResultBytes?: number;
  quotaGroups?: number;
  quotaInvitations?: number;
  quotaInbox?: number;
  quotaFunctionBytes?: number;
  forwarderIdleClose?: number;
  tlsCert?: string;
  tlsKey?: string;
  forwarderKey?: string;
}

/** The last `bytes` of a file (the log of a service that failed to start), or "". */
function tail(path: string, bytes = 2000): string {
  try {
    const size = statSync(path).size;
    const fd = openSync(path, 'r');
    const buf = Buffer.alloc(Math.min(bytes, size));
    readSync(fd, buf, 0, buf.length, size - buf.length);
    closeSync(fd);
    return buf.toString('utf8').trim();
  } catch {
    return '';
  }
}

/** Both TLS files or neither. */
function tlsFiles(flags: StartFlags): { cert: string; key: string } | undefined {
  if (!flags.tlsCert && !flags.tlsKey) return undefined;
  if (!flags.tlsCert || !flags.tlsKey) throw new FuncxError('CONFIG', '--tls-cert and --tls-key go together: give both');
  return { cert: flags.tlsCert, key: flags.tlsKey };
}

async function runForeground(flags: StartFlags): Promise<void> {
  refuseIfRunning();
  const service = await startService({
    home: serviceHome(),
    database: database(flags.database),
    host: flags.host,
    port: flags.port,
    forwarderHost: flags.forwarderHost,
    forwarderPortRange: flags.forwarderPorts,
    heartbeatPeriodMs: flags.heartbeatPeriodMs,
    heartbeatThresholdMs: flags.heartbeatThresholdMs,
    maxResultBytes: flags.maxResultBytes,
    maxBatch: flags.maxBatch,
    taskRatePerUser: flags.rateTasks,
    invitationDays: flags.invitationDays,
    invitesPerSender: flags.invitesPerSender,
    functionRateBytesPerUser: flags.rateFunctionBytes,
    quotas: {
      tasks: flags.quotaTasks, functions: flags.quotaFunctions, endpoints: flags.quotaEndpoints, resultBytes: flags.quotaResultBytes,
      groups: flags.quotaGroups, invitations: flags.quotaInvitations, inbox: flags.quotaInbox, functionBytes: flags.quotaFunctionBytes,
    },
    tls: tlsFiles(flags),
    forwarderKeyFile: flags.forwarderKey,
    forwarderIdleCloseMs: flags.forwarderIdleClose,
  });
  const pidFile: PidFile = { pid: process.pid, url: service.url, startedAt: new Date().toISOString() };
  writeFileSync(pidPath(), JSON.stringify(pidFile) + '\n', { mode: 0o600 });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${new Date().toISOString()} INFO [service] ${signal}: stopping\n`);
    await service.close();
    if (readPidFile()?.pid === process.pid) rmSync(pidPath(), { force: true });
    Exit.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.stdout.write(`funcx-service listening on ${service.url}\n`);
  // Tell a detaching parent we are up (it then checks /v1/health itself).
  if (process.send) {
    process.send({ ready: true, url: service.url, pid: process.pid });
    process.disconnect();
  }
}

/** Start the service as a detached child: `entry` is the funcx-service CLI script it runs with --foreground. */
async function startDetached(flags: StartFlags, entry: string): Promise<void> {
  refuseIfRunning();
  mkdirSync(serviceHome(), { recursive: true, mode: 0o700 });
  const log = openSync(logPath(), 'a', 0o600);
  const args = [entry, 'start', '--foreground', '--host', flags.host, '--port', String(flags.port)];
  if (flags.forwarderHost) args.push('--forwarder-host', flags.forwarderHost);
  if (flags.forwarderPorts) args.push('--forwarder-ports', flags.forwarderPorts.join('-'));
  if (flags.heartbeatPeriodMs) args.push('--heartbeat-period-ms', String(flags.heartbeatPeriodMs));
  if (flags.heartbeatThresholdMs) args.push('--heartbeat-threshold-ms', String(flags.heartbeatThresholdMs));
  if (flags.maxResultBytes) args.push('--max-result-bytes', String(flags.maxResultBytes));
  if (flags.maxBatch) args.push('--max-batch', String(flags.maxBatch));
  if (flags.rateTasks) args.push('--rate-tasks', String(flags.rateTasks));
  if (flags.invitationDays) args.push('--invitation-days', String(flags.invitationDays));
  if (flags.invitesPerSender) args.push('--invites-per-sender', String(flags.invitesPerSender));
  if (flags.rateFunctionBytes) args.push('--rate-function-bytes', String(flags.rateFunctionBytes));
  if (flags.tlsCert) args.push('--tls-cert', resolve(flags.tlsCert));
  if (flags.tlsKey) args.push('--tls-key', resolve(flags.tlsKey));
  if (flags.forwarderKey) args.push('--forwarder-key', resolve(flags.forwarderKey));
  tlsFiles(flags);
  if (flags.quotaTasks !== undefined) args.push('--quota-tasks', String(flags.quotaTasks));
  if (flags.quotaFunctions !== undefined) args.push('--quota-functions', String(flags.quotaFunctions));
  if (flags.quotaEndpoints !== undefined) args.push('--quota-endpoints', String(flags.quotaEndpoints));
  if (flags.quotaResultBytes !== undefined) args.push('--quota-result-bytes', String(flags.quotaResultBytes));
  if (flags.quotaGroups !== undefined) args.push('--quota-groups', String(flags.quotaGroups));
  if (flags.quotaInvitations !== undefined) args.push('--quota-invitations', String(flags.quotaInvitations));
  if (flags.quotaInbox !== undefined) args.push('--quota-inbox', String(flags.quotaInbox));
  if (flags.quotaFunctionBytes !== undefined) args.push('--quota-function-bytes', String(flags.quotaFunctionBytes));
  if (flags.forwarderIdleClose !== undefined) args.push('--forwarder-idle-close', flags.forwarderIdleClose === 0 ? '0' : `${Math.ceil(flags.forwarderIdleClose / 1000)}s`);
  // The database location goes through the environment: a password on the command line is visible to every user in ps.
  const env = flags.database ? { ...process.env, FUNCX_DATABASE_URL: database(flags.database) } : process.env;
  const child = spawn(process.execPath, [...semiSpaceArgs(SERVICE_SEMI_SPACE_MB), ...profilingArgs(), ...args], { detached: true, stdio: ['ignore', log, log, 'ipc'], env });
  closeSync(log);
  const ready = await new Promise<{ url: string; pid: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new FuncxError('START_TIMEOUT', `funcx-service did not start within 20 s; see ${logPath()}`)), 20_000);
    child.once('message', (m) => (clearTimeout(timer), resolve(m as { url: string; pid: number })));
    child.once('exit', (code) => {
      clearTimeout(timer);
      const last = tail(logPath()).split('\n').slice(-3).join('\n');
      reject(new FuncxError('START_FAILED', `the service exited during start (code ${code})${last ? `:\n${last}` : ''}`));
    });
  });
  child.removeAllListeners('exit');
  child.unref();
  if (child.connected) child.disconnect();
  const health = await healthy(ready.url);
  if (!health) throw new FuncxError('START_FAILED', `funcx-service started (pid ${ready.pid}) but ${ready.url}/v1/health does not answer; see ${logPath()}`);
  process.stdout.write(`funcx-service running at ${ready.url} (pid ${ready.pid}); logs in ${logPath()}\n`);
}

/** `entry`: the path of the funcx-service script, which a detached start runs again in the foreground. */
export function registerStartCommand(program: Command, entry: string): void {
  program
    .command('start')
    .description('start the service (in the background unless --foreground)')
    .option('--database <location>', 'SQLite file or postgres://USER:PASSWORD@HOST:PORT/DB (default: $FUNCX_DATABASE_URL, else HOME/service.db)')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'HTTP port (0: any free port)', intOption('--port', 0, 65535), SERVICE_DEFAULTS.port)
    .option('--foreground', 'stay in the foreground')
    .option('--forwarder-host <address>', 'address forwarders bind (default: --host)')
    .option('--forwarder-ports <low-high>', 'port range for forwarder sockets (default: any free port)', portRange)
    .option('--heartbeat-period-ms <ms>', `forwarder heartbeat period (default ${SERVICE_DEFAULTS.heartbeatPeriodMs})`, intOption('--heartbeat-period-ms', 50, 3_600_000))
    .option('--heartbeat-threshold-ms <ms>', `endpoint is Inactive after this long without a message (default ${SERVICE_DEFAULTS.heartbeatThresholdMs})`, intOption('--heartbeat-threshold-ms', 100, 86_400_000))
    .option('--max-result-bytes <bytes>', `largest result stored; bigger ones are stored as ResultTooLarge (default ${DEFAULT_LIMITS.maxResultBytes})`, intOption('--max-result-bytes', 1, 2 ** 31))
    .option('--max-batch <tasks>', `most tasks in one submission (default ${DEFAULT_LIMITS.maxBatch})`, intOption('--max-batch', 1, 1_000_000))
    .option('--rate-function-bytes <size>', `bytes a second of function registrations one user may send, in bursts of up to the 8 MiB function body (default ${DEFAULT_LIMITS.functionRateBytesPerUser})`, parseBytes)
    .option('--rate-tasks <n>', `tasks a second one user may submit, in bursts of up to --max-batch (default ${DEFAULT_LIMITS.taskRatePerUser})`, intOption('--rate-tasks', 1, 1e9))
    .option('--quota-tasks <n>', `unfinished tasks per user (default ${DEFAULT_QUOTAS.tasks})`, intOption('--quota-tasks', 0, 1e9))
    .option('--quota-functions <n>', `functions per user (default ${DEFAULT_QUOTAS.functions})`, intOption('--quota-functions', 0, 1e9))
    .option('--quota-endpoints <n>', `endpoints per user (default ${DEFAULT_QUOTAS.endpoints})`, intOption('--quota-endpoints', 0, 1e9))
    .option('--forwarder-idle-close <duration>', "close an endpoint's forwarder once it has been gone this long, e.g. 30m; 0: never (default 1h)", idleClose)
    .option('--quota-result-bytes <size>', `bytes of stored results per user, e.g. 50GiB (default ${DEFAULT_QUOTAS.resultBytes})`, parseBytes)
    .option('--quota-groups <n>', `groups owned per user (default ${DEFAULT_QUOTAS.groups})`, intOption('--quota-groups', 0, 1e9))
    .option('--quota-invitations <n>', `invitations pending (not yet answered) sent per user (default ${DEFAULT_QUOTAS.invitations})`, intOption('--quota-invitations', 0, 1e9))
    .option('--quota-inbox <n>', `invitations pending in one user's inbox (default ${DEFAULT_QUOTAS.inbox})`, intOption('--quota-inbox', 0, 1e9))
    .option('--invitation-days <n>', `days an invitation waits for an answer before it expires (default ${DEFAULT_LIMITS.invitationDays})`, intOption('--invitation-days', 1, 36_500))
    .option('--invites-per-sender <n>', `invitations one group owner may have pending in one user's inbox (default ${DEFAULT_LIMITS.invitesPerSender})`, intOption('--invites-per-sender', 1, 1e6))
    .option('--quota-function-bytes <size>', `bytes of function sources per user, e.g. 256MiB (default ${DEFAULT_QUOTAS.functionBytes})`, parseBytes)
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM; with --tls-key)')
    .option('--tls-key <file>', "the certificate's private key (PEM)")
    .option('--forwarder-key <file>', "the forwarder's CURVE key pair (0600), the same file on every replica (default: HOME/keys/forwarder.json)")
    .action(async (flags: StartFlags) => (flags.foreground ? runForeground(flags) : startDetached(flags, entry)));
}
