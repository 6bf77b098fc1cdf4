#!/usr/bin/env node
/**
 * `funcx-service`: start (detached by default), stop (one call), status, users (add, disable, enable, remove,
 * quota), tokens (rotate; named ones: create, list, revoke: service-tenancy.ts), and `migrate`.
 * State lives in FUNCX_SERVICE_HOME (default ~/.funcx-service): service.db, keys/, service.pid, service.log;
 * with `--database postgres://…` (or FUNCX_DATABASE_URL) the tasks, users and endpoints live in PostgreSQL
 * instead, shared by every replica.
 */
import { Command, InvalidArgumentError } from 'commander';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync, closeSync, readSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FuncxError } from '../errors.js';
import { handle } from './handle.js';
import { startService } from '../service/api.js';
import { isPostgresUrl, openStore, PgStore, type Store, type User } from '../service/store/index.js';
import { DEFAULT_LIMITS, DEFAULT_QUOTAS, SERVICE_SEMI_SPACE_MB } from '../service/limits.js';
import { addQuotaCommand, addTokenCommands, parseBytes } from './service-tenancy.js';
import { parseDuration } from '../service/durations.js';
import { profilingArgs, semiSpaceArgs } from '../worker/worker-pool.js';

interface PidFile {
  pid: number;
  url: string;
  startedAt: string;
}

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

const home = (): string => process.env.FUNCX_SERVICE_HOME || join(homedir(), '.funcx-service');
const pidPath = (): string => join(home(), 'service.pid');
const logPath = (): string => join(home(), 'service.log');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Where the state lives: --database, else FUNCX_DATABASE_URL, else HOME/service.db. */
function database(flag: string | undefined): string {
  const location = flag || process.env.FUNCX_DATABASE_URL || join(home(), 'service.db');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location) && !isPostgresUrl(location)) {
    throw new FuncxError('CONFIG', `--database: "${location.split(':')[0]}:" is not a database this service knows; give a file path or postgres://USER:PASSWORD@HOST:PORT/DATABASE`);
  }
  return location;
}

/** A database location fit for a message: no password. */
function describe(location: string): string {
  if (!isPostgresUrl(location)) return location;
  try {
    const u = new URL(location);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://…';
  }
}

function readPidFile(): PidFile | undefined {
  try {
    const p = JSON.parse(readFileSync(pidPath(), 'utf8')) as PidFile;
    return Number.isInteger(p.pid) && typeof p.url === 'string' ? p : undefined;
  } catch {
    return undefined;
  }
}

/** Alive and (where /proc tells) really a funcx-service, not a recycled pid. */
function isServiceProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  const cmdline = `/proc/${pid}/cmdline`;
  return !existsSync(cmdline) || readFileSync(cmdline, 'utf8').includes('service');
}

async function healthy(url: string): Promise<{ pid: number; protocol: number } | undefined> {
  try {
    const r = await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(2000) });
    return r.ok ? ((await r.json()) as { pid: number; protocol: number }) : undefined;
  } catch {
    return undefined;
  }
}

function refuseIfRunning(): void {
  const running = readPidFile();
  if (running && isServiceProcess(running.pid)) {
    throw new FuncxError('ALREADY_RUNNING', `funcx-service is already running at ${running.url} (pid ${running.pid})`, ['stop it with `funcx-service stop`']);
  }
}

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
    home: home(),
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
    process.exit(0);
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

async function startDetached(flags: StartFlags): Promise<void> {
  refuseIfRunning();
  mkdirSync(home(), { recursive: true, mode: 0o700 });
  const log = openSync(logPath(), 'a', 0o600);
  const args = [fileURLToPath(import.meta.url), 'start', '--foreground', '--host', flags.host, '--port', String(flags.port)];
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

async function stopService(graceSeconds: number): Promise<void> {
  const running = readPidFile();
  if (!running || !isServiceProcess(running.pid)) {
    if (running) rmSync(pidPath(), { force: true });
    process.stdout.write(`funcx-service is not running${running ? ' (removed a stale pid file)' : ''}\n`);
    return;
  }
  process.kill(running.pid, 'SIGTERM');
  const deadline = Date.now() + graceSeconds * 1000;
  while (isServiceProcess(running.pid) && Date.now() < deadline) await sleep(50);
  let how = 'stopped';
  if (isServiceProcess(running.pid)) {
    process.kill(running.pid, 'SIGKILL');
    how = `killed (it did not stop within ${graceSeconds} s)`;
    while (isServiceProcess(running.pid)) await sleep(20);
  }
  if (readPidFile()?.pid === running.pid) rmSync(pidPath(), { force: true });
  process.stdout.write(`funcx-service ${how} (pid ${running.pid})\n`);
}

async function status(json: boolean): Promise<void> {
  const running = readPidFile();
  const alive = running ? isServiceProcess(running.pid) : false;
  const health = running && alive ? await healthy(running.url) : undefined;
  if (json) {
    process.stdout.write(JSON.stringify({ running: Boolean(health), url: running?.url ?? null, pid: alive ? running!.pid : null, home: home() }) + '\n');
  } else if (health) {
    process.stdout.write(`funcx-service is running at ${running!.url} (pid ${running!.pid}, protocol ${health.protocol})\n`);
  } else if (alive) {
    process.stdout.write(`funcx-service (pid ${running!.pid}) is running but ${running!.url}/v1/health does not answer\n`);
  } else {
    process.stdout.write('funcx-service is not running\n');
  }
  if (!health) process.exitCode = 3;
}

async function addUser(name: string, flags: { database?: string }): Promise<void> {
  if (!/^[A-Za-z0-9._@-]{1,100}$/.test(name)) throw new FuncxError('CONFIG', `user name "${name}" may only use letters, digits, ".", "_", "@" and "-"`);
  mkdirSync(home(), { recursive: true, mode: 0o700 });
  const store = await openStore(database(flags.database));
  try {
    if (await store.userByName(name)) throw new FuncxError('USER_EXISTS', `user ${name} already exists`);
    const { token } = await store.createUser(name);
    process.stderr.write(`Created user ${name}. Their token is printed once below; only its hash is kept:\n`);
    process.stdout.write(token + '\n');
  } finally {
    await store.close();
  }
}

/** Run `fn` on the user named `name` in the service's database (the running service sees the change at once). */
async function withUser(name: string, flags: { database?: string }, fn: (store: Store, user: User) => Promise<void>): Promise<void> {
  const store = await openStore(database(flags.database));
  try {
    const user = await store.userByName(name);
    if (!user) throw new FuncxError('NO_SUCH_USER', `no user named ${name}`);
    await fn(store, user);
  } finally {
    await store.close();
  }
}

/** Bring the database's schema up to date and say what it is at (start does this too). */
async function migrate(flags: { database?: string }): Promise<void> {
  const location = database(flags.database);
  if (!isPostgresUrl(location)) mkdirSync(home(), { recursive: true, mode: 0o700 });
  const store = await openStore(location);
  try {
    const version = await store.schemaVersion();
    const kind = store instanceof PgStore ? 'PostgreSQL' : 'SQLite';
    process.stdout.write(`${kind} database ${describe(location)} is at schema version ${version}\n`);
  } finally {
    await store.close();
  }
}

function intOption(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
    return n;
  };
}

function idleClose(value: string): number {
  if (value.trim() === '0') return 0;
  try {
    return parseDuration(value, '--forwarder-idle-close');
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function portRange(value: string): [number, number] {
  const m = /^(\d+)-(\d+)$/.exec(value);
  const range = m ? ([Number(m[1]), Number(m[2])] as [number, number]) : undefined;
  if (!range || range[0] < 1 || range[1] > 65535 || range[0] > range[1]) throw new InvalidArgumentError('expected LOW-HIGH, e.g. 55000-55100');
  return range;
}

const program = new Command('funcx-service').description('The funcX web service: REST API, users, endpoints, functions, tasks and forwarders.');
program
  .command('start')
  .description('start the service (in the background unless --foreground)')
  .option('--database <location>', 'SQLite file or postgres://USER:PASSWORD@HOST:PORT/DB (default: $FUNCX_DATABASE_URL, else HOME/service.db)')
  .option('--host <address>', 'address to listen on', '127.0.0.1')
  .option('--port <port>', 'HTTP port (0: any free port)', intOption('--port', 0, 65535), 8080)
  .option('--foreground', 'stay in the foreground')
  .option('--forwarder-host <address>', 'address forwarders bind (default: --host)')
  .option('--forwarder-ports <low-high>', 'port range for forwarder sockets (default: any free port)', portRange)
  .option('--heartbeat-period-ms <ms>', 'forwarder heartbeat period', intOption('--heartbeat-period-ms', 50, 3_600_000))
  .option('--heartbeat-threshold-ms <ms>', 'endpoint is Inactive after this long without a message', intOption('--heartbeat-threshold-ms', 100, 86_400_000))
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
  .action(async (flags: StartFlags) => (flags.foreground ? runForeground(flags) : startDetached(flags)));
program
  .command('stop')
  .description('stop the service: SIGTERM, then SIGKILL after the grace period')
  .option('--grace <seconds>', 'seconds to wait before SIGKILL', intOption('--grace', 0, 3600), 10)
  .action(async (flags: { grace: number }) => stopService(flags.grace));
program
  .command('status')
  .description('say whether the service runs, and where (exit 3 when not)')
  .option('--json', 'print JSON')
  .action(async (flags: { json?: boolean }) => status(Boolean(flags.json)));
const user = program.command('user').description('manage users');
user
  .command('add <name>')
  .description('create a user and print their token (once)')
  .option('--database <location>', 'as for start')
  .action(async (name: string, flags: { database?: string }) => addUser(name, flags));
user
  .command('disable <name>')
  .description("refuse the user's token until enabled again (nothing of theirs is deleted)")
  .option('--database <location>', 'as for start')
  .action(async (name: string, flags: { database?: string }) =>
    withUser(name, flags, async (store, u) => {
      await store.setUserDisabled(u.id, true);
      process.stdout.write(`User ${name} is disabled: their token is refused.\n`);
    }));
user
  .command('enable <name>')
  .description('accept the user\'s token again')
  .option('--database <location>', 'as for start')
  .action(async (name: string, flags: { database?: string }) =>
    withUser(name, flags, async (store, u) => {
      await store.setUserDisabled(u.id, false);
      process.stdout.write(`User ${name} is enabled.\n`);
    }));
user
  .command('remove <name>')
  .description('remove the user with their endpoints, functions, groups and tasks')
  .option('--database <location>', 'as for start')
  .action(async (name: string, flags: { database?: string }) =>
    withUser(name, flags, async (store, u) => {
      const { endpoints, failedTasks } = await store.removeUser(u.id);
      process.stdout.write(`Removed user ${name} (${endpoints.length} endpoints, ${failedTasks.length} unfinished tasks on them failed).\n`);
    }));
const token = program.command('token').description("manage users' tokens");
token
  .command('rotate <user>')
  .description('give the user a new token (printed once); the old one stops working at once')
  .option('--database <location>', 'as for start')
  .action(async (name: string, flags: { database?: string }) =>
    withUser(name, flags, async (store, u) => {
      const fresh = await store.rotateToken(u.id);
      process.stderr.write(`New token of ${name}, printed once below; the old one no longer works:\n`);
      process.stdout.write(fresh + '\n');
    }));
addTokenCommands(token, withUser);
addQuotaCommand(user, withUser);
program
  .command('migrate')
  .description('bring the database schema up to date and exit (start does this too)')
  .option('--database <location>', 'as for start')
  .action(async (flags: { database?: string }) => migrate(flags));

program.parseAsync(process.argv).catch((err: unknown) => handle(err));
