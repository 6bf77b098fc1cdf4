/**
 * The chaos rig: one real funcx-service and one real endpoint, each in its own temporary home, driven only
 * through the programs a user runs (`funcx-service start/stop/user add`, `funcx-endpoint init/start/stop/
 * status`). Every case of the suite gets a fresh rig, so one case's wreckage never counts in another's.
 *
 *   const rig = await Rig.create('worker-kill');
 *   await rig.startService();  await rig.addUser();  await rig.initEndpoint();
 *   rig.writeProfile(source);  await rig.startEndpoint();
 *   ... rig.client() ... rig.daemonPid() ... rig.servicePid() ...
 *   await rig.teardown(ok);    // stops everything, kills what is left of ours, removes the folder when ok
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FuncXClient } from '../../src/sdk/client.js';
import { setTimeout as delay } from 'node:timers/promises';
import { isAlive, managersOf, signal, until, workersOf } from './procs.js';

const CLI = (program: 'service' | 'endpoint'): string => fileURLToPath(new URL(`../../src/cli/${program}.js`, import.meta.url));

/** What `funcx-endpoint status NAME --json` prints (the fields the suite reads). */
export interface EndpointStatusJson {
  status: 'Active' | 'Inactive' | 'Initialized';
  pid: number | null;
  backlog: number;
  pending: number;
  managers: Array<{ id: string; blockId: string; workers: number; outstanding: number }>;
  blocks: Array<{ id: string; jobId: string | null; state: string; nodes: number; managers: number; busyWorkers: number }>;
}

/** A CLI run that failed: its exit status and both streams. */
export class CliError extends Error {
  constructor(
    readonly command: string,
    readonly code: number | string | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    // Stack frames say little to the reader of a report: keep the messages.
    const lines = (stderr || stdout).trim().split('\n').filter((l) => l.trim() !== '' && !/^\s+at /.test(l));
    super(`\`${command}\` failed (exit ${code}): ${lines.slice(0, 6).join(' | ')}`);
  }
}

export class Rig {
  readonly serviceHome: string;
  readonly funcxHome: string;
  /** The endpoint's name: unique per rig, so Slurm job names (funcx-NAME-block) are ours alone. */
  readonly name: string;
  readonly env: NodeJS.ProcessEnv;
  url = '';
  port = 0;
  token = '';
  endpointId = '';
  /** Things teardown found and cleaned up (processes left behind, jobs left in the queue). */
  readonly leftovers: string[] = [];

  private constructor(
    readonly root: string,
    caseName: string,
  ) {
    this.serviceHome = join(root, 'service');
    this.funcxHome = join(root, 'home');
    this.name = `chaos-${caseName}-${process.pid}-${Math.random().toString(36).slice(2, 6)}`.slice(0, 64);
    mkdirSync(this.serviceHome, { recursive: true, mode: 0o700 });
    // Nothing of the caller's funcX set-up leaks in (their home, token, site templates, log level).
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FUNCX_')) env[k] = v;
    env.FUNCX_HOME = this.funcxHome;
    env.FUNCX_SERVICE_HOME = this.serviceHome;
    env.FUNCX_SITE_TEMPLATES = join(root, 'no-site-templates');
    this.env = env;
  }

  static create(caseName: string): Rig {
    return new Rig(mkdtempSync(join(tmpdir(), `funcx-chaos-${caseName}-`)), caseName);
  }

  /** Niceness of the programs this rig starts (and so of the daemons they leave running); 0: as the runner. */
  nice = 0;

  /** Run `funcx-service` or `funcx-endpoint` with the rig's environment; resolves with stdout. */
  cli(program: 'service' | 'endpoint', args: string[], timeoutMs = 60_000, env: NodeJS.ProcessEnv = this.env): Promise<string> {
    const command = `funcx-${program} ${args.join(' ')}`;
    return new Promise((resolve, reject) => {
      const [file, argv] = this.nice ? ['nice', ['-n', String(this.nice), process.execPath, CLI(program), ...args]] : [process.execPath, [CLI(program), ...args]];
      execFile(file, argv, { env, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new CliError(command, (err as NodeJS.ErrnoException).code ?? (err as { signal?: string }).signal ?? null, stdout, stderr));
        else resolve(stdout);
      });
    });
  }

  // ---- the service -----------------------------------------------------------------------------------------

  /**
   * `funcx-service start --port PORT [ARGS]` (0: any free port the first time; the same port on a restart).
   * With FUNCX_CHAOS_SERVICE_PROFILE_DIR set, the service (only) writes a CPU profile there when it stops.
   */
  async startService(port = 0, args: string[] = []): Promise<void> {
    const profileDir = process.env.FUNCX_CHAOS_SERVICE_PROFILE_DIR;
    const env = profileDir ? { ...this.env, FUNCX_CPU_PROFILE_DIR: profileDir } : this.env;
    const out = await this.cli('service', ['start', '--port', String(port), ...args], 60_000, env);
    const m = /running at (http:\/\/[^\s]+:(\d+))/.exec(out);
    if (!m) throw new Error(`could not read the service URL from: ${out.trim()}`);
    this.url = m[1];
    this.port = Number(m[2]);
    this.env.FUNCX_SERVICE_URL = this.url;
  }

  /** The service's pid, from FUNCX_SERVICE_HOME/service.pid ({pid, url, startedAt}). */
  servicePid(): number {
    const file = join(this.serviceHome, 'service.pid');
    const pid = (JSON.parse(readFileSync(file, 'utf8')) as { pid?: unknown }).pid;
    if (!Number.isInteger(pid)) throw new Error(`${file} holds no pid`);
    return pid as number;
  }

  /** `funcx-service user add chaos`: the token it prints once. */
  async addUser(name = 'chaos'): Promise<string> {
    const out = await this.cli('service', ['user', 'add', name]);
    const token = /fx_[A-Za-z0-9_-]+/.exec(out)?.[0];
    if (!token) throw new Error('`funcx-service user add` printed no token');
    this.token = token;
    this.env.FUNCX_TOKEN = token;
    return token;
  }

  // ---- the endpoint ----------------------------------------------------------------------------------------

  /** `funcx-endpoint init --service URL` (the token comes from FUNCX_TOKEN). */
  async initEndpoint(): Promise<void> {
    await this.cli('endpoint', ['init', '--service', this.url]);
  }

  get endpointDir(): string {
    return join(this.funcxHome, this.name);
  }

  /** Write FUNCX_HOME/NAME/config.ts. */
  writeProfile(source: string): void {
    mkdirSync(this.endpointDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(this.endpointDir, 'config.ts'), source);
  }

  /** `funcx-endpoint start NAME`: returns once the endpoint says it is Active. */
  async startEndpoint(): Promise<void> {
    const out = await this.cli('endpoint', ['start', this.name], 90_000);
    const id = /Active: id ([0-9a-f-]{36})/.exec(out)?.[1];
    if (!id) throw new Error(`could not read the endpoint id from: ${out.trim()}`);
    if (this.endpointId && id !== this.endpointId) throw new Error(`the endpoint came back with another id: ${id}, was ${this.endpointId}`);
    this.endpointId = id;
  }

  /** The daemon's pid from FUNCX_HOME/NAME/daemon.pid (the lease, JSON {pid, host, ...}). */
  daemonPid(): number {
    const file = join(this.endpointDir, 'daemon.pid');
    const pid = (JSON.parse(readFileSync(file, 'utf8')) as { pid?: unknown }).pid;
    if (!Number.isInteger(pid)) throw new Error(`${file} holds no pid`);
    return pid as number;
  }

  /** `funcx-endpoint status NAME --json`. */
  async status(): Promise<EndpointStatusJson> {
    return JSON.parse(await this.cli('endpoint', ['status', this.name, '--json'])) as EndpointStatusJson;
  }

  /** An SDK client for the rig's user, on the service at `url` (default: where the endpoint registered). */
  client(url = this.url): FuncXClient {
    return new FuncXClient({ serviceUrl: url, token: this.token });
  }

  /** Use a service started by the case itself (replicas behind a balancer): the URL endpoint and user are given. */
  useService(url: string): void {
    this.url = url;
    this.port = Number(new URL(url).port);
    this.env.FUNCX_SERVICE_URL = url;
  }

  /** The endpoint's log (for reports when something went wrong). */
  logTail(lines = 20): string {
    const file = join(this.endpointDir, 'endpoint.log');
    if (!existsSync(file)) return '(no endpoint.log)';
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  }

  // ---- teardown --------------------------------------------------------------------------------------------

  /**
   * Stop the endpoint and the service the way an operator would, then make sure nothing of ours is left:
   * managers and workers of this home, Slurm jobs named after this endpoint. Anything still there is noted
   * in `leftovers` (a finding) and killed. The folder is removed when `removeFolder` is set. `stopServices`
   * stops a service side the case started itself (replicas, a PostgreSQL), after the endpoint.
   */
  async teardown(removeFolder: boolean, stopServices?: () => Promise<void>): Promise<void> {
    if (existsSync(this.endpointDir)) await this.cli('endpoint', ['stop', this.name, '--grace', '5'], 60_000).catch(() => {});
    if (existsSync(join(this.serviceHome, 'service.pid'))) await this.cli('service', ['stop', '--grace', '5'], 60_000).catch(() => {});
    if (stopServices) await stopServices().catch((err: Error) => this.leftovers.push(`the case's services did not stop: ${err.message}`));
    // Managers leave when told to (stop) or when the interchange has been silent past the threshold.
    await until('managers and workers of this endpoint to exit', () => managersOf(this.funcxHome).length + workersOf(this.funcxHome).length === 0, { timeoutMs: 10_000 }).catch(() => {});
    for (const p of [...workersOf(this.funcxHome), ...managersOf(this.funcxHome)]) {
      this.leftovers.push(`pid ${p.pid} (${p.cmdline.includes('manager.js') ? 'manager' : 'worker'}, state ${p.state}) still running 10 s after stop`);
      signal(p.pid, 'SIGCONT');
      signal(p.pid, 'SIGKILL');
    }
    const jobs = await slurmJobsNamed(`funcx-${this.name}-`);
    for (const job of jobs) {
      if (job.state === 'R' || job.state === 'PD') this.leftovers.push(`Slurm job ${job.id} (${job.name}, ${job.state}) still queued after stop`);
      await run('scancel', [job.id]).catch(() => {});
    }
    await until('the leftovers to die', () => [...managersOf(this.funcxHome), ...workersOf(this.funcxHome)].every((p) => !isAlive(p.pid)), { timeoutMs: 5000 }).catch(() => {});
    if (removeFolder) rmSync(this.root, { recursive: true, force: true });
  }
}

/** Run a command; resolves with stdout, rejects with its stderr. */
export function run(command: string, args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new CliError(`${command} ${args.join(' ')}`, (err as NodeJS.ErrnoException).code ?? null, stdout, stderr));
      else resolve(stdout);
    });
  });
}

/** Slurm jobs whose name starts with `prefix`: id, name and squeue's compact state (R, PD, CG...). */
export async function slurmJobsNamed(prefix: string): Promise<Array<{ id: string; name: string; state: string }>> {
  let out: string;
  try {
    out = await run('squeue', ['--noheader', '--format=%i %j %t']);
  } catch {
    return []; // no Slurm here: nothing of ours can be queued
  }
  return out
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length === 3 && f[1].startsWith(prefix))
    .map(([id, name, state]) => ({ id, name, state }));
}

// ---- submit and count ------------------------------------------------------------------------------------

/**
 * The task every case runs: sleeps `ms` and returns its index, so a result that is not this task's own shows
 * as wrong. Given a `gate` (a file path), it then waits until that file exists: the case opens the gate after
 * its breaks, so the gated tasks are in flight at every break however fast or slow the machine is.
 */
export async function chaosTask(i: number, ms: number, gate?: string): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  if (gate) {
    // Runs in a worker: only what a function body has there (require, not imports).
    // Waits for the file's creation (inotify on its folder), not for time.
    const { existsSync, watch } = require('node:fs') as typeof import('node:fs');
    const { dirname } = require('node:path') as typeof import('node:path');
    await new Promise<void>((resolve) => {
      const watcher = watch(dirname(gate), () => check());
      const check = () => {
        if (!existsSync(gate)) return;
        watcher.close();
        resolve();
      };
      check(); // it may have been written before the watch began
    });
  }
  return i;
}

/** Tasks from this fraction of a batch on wait for the gate (above every fraction a case waits for). */
export const GATED_FROM = 0.7;

/**
 * Register chaosTask and submit `n` tasks in one batch; task ids in index order. With `gate`, the last 30 %
 * of the tasks wait for that file (see chaosTask).
 */
export async function submitTasks(client: FuncXClient, endpointId: string, n: number, sleepMs: number, gate?: string): Promise<string[]> {
  const fn = await client.registerFunction(chaosTask, { name: 'chaos-task' });
  const batch = client.createBatch();
  const gatedFrom = Math.floor(n * GATED_FROM);
  for (let i = 0; i < n; i++) {
    if (gate && i >= gatedFrom) batch.add(endpointId, fn, i, sleepMs, gate);
    else batch.add(endpointId, fn, i, sleepMs);
  }
  return client.batchRun(batch);
}

/** Per-task outcome counts of one case. */
export interface Counts {
  submitted: number;
  /** Succeeded with the task's own value. */
  completed: number;
  /** Failed with an explicit remote error (WorkerLost, ManagerLost, ...). */
  failed: number;
  /** No result by the deadline, or a value that is not the task's own (see `wrong`). */
  lost: number;
  /** Succeeded with a value that is not the task's own (counted in `lost`). */
  wrong: number;
  /** Failures by error type, e.g. { WorkerLost: 2 }. */
  failureTypes: Record<string, number>;
  /** The first error message of each failure type (what a user would read). */
  failureExamples: Record<string, string>;
  /** States the lost tasks were last seen in, e.g. { running: 3 }. */
  lostStates: Record<string, number>;
  /** Seconds from submission to the last result (or to the deadline when some were lost). */
  seconds: number;
  /** The last error the collector met talking to the service (expected while it is down). */
  lastServiceError?: string;
}

/**
 * Waits for the results of a batch through the SDK's long-poll, riding out a service that is down (requests
 * fail and are retried). The deadline stays open until the case calls `finishWithin(ms)` after its recovery.
 */
export class Collector {
  private readonly index = new Map<string, number>();
  private readonly outcomes = new Map<string, { ok: boolean; value?: unknown; type?: string; message?: string }>();
  private deadline = Infinity;
  private readonly startedAt = Date.now();
  private finishedAt = 0;
  private lastError: string | undefined;
  readonly done: Promise<Counts>;

  constructor(
    private readonly client: FuncXClient,
    /** The batch's task ids, in index order. */
    readonly ids: readonly string[],
  ) {
    ids.forEach((id, i) => this.index.set(id, i));
    this.done = this.collect();
  }

  /** Results received so far. */
  get finished(): number {
    return this.outcomes.size;
  }

  get pending(): number {
    return this.ids.length - this.outcomes.size;
  }

  /** The ids of the tasks with no result yet. */
  pendingIds(): string[] {
    return this.ids.filter((id) => !this.outcomes.has(id));
  }

  /** Give the remaining tasks `ms` from now, then count whatever has no result as lost. */
  finishWithin(ms: number): void {
    this.deadline = Math.min(this.deadline, Date.now() + ms);
  }

  /** Wait until at least `fraction` of the tasks have a result. */
  async waitFor(fraction: number, timeoutMs: number): Promise<void> {
    const target = Math.ceil(this.ids.length * fraction);
    await until(`${target} of ${this.ids.length} results (have ${this.finished})`, () => this.finished >= target, { timeoutMs: timeoutMs, everyMs: 50 });
  }

  private async collect(): Promise<Counts> {
    while (this.pending > 0 && Date.now() < this.deadline) {
      const pending = this.ids.filter((id) => !this.outcomes.has(id));
      const waitMs = Math.max(0, Math.min(200, this.deadline - Date.now()));
      try {
        const results = await this.client.getBatchResults(pending, { waitMs });
        for (const r of results) if (r && !r.pending) this.outcomes.set(r.taskId, { ok: r.ok === true, value: r.value, type: r.error?.type, message: r.error?.message });
        this.finishedAt = Date.now();
      } catch (err) {
        // The service is down (a chaos case did it): keep asking.
        this.lastError = (err as Error).message;
        await delay(250); // the service is down: ask again a little later (a retry pace, not a wait for an event)
      }
    }
    return this.count();
  }

  private async count(): Promise<Counts> {
    const c: Counts = {
      submitted: this.ids.length, completed: 0, failed: 0, lost: 0, wrong: 0, failureTypes: {}, failureExamples: {}, lostStates: {}, seconds: 0,
    };
    for (const [id, o] of this.outcomes) {
      if (!o.ok) {
        c.failed++;
        const type = o.type ?? '(no type)';
        c.failureTypes[type] = (c.failureTypes[type] ?? 0) + 1;
        c.failureExamples[type] ??= o.message ?? '';
      } else if (o.value === this.index.get(id)) c.completed++;
      else c.wrong++;
    }
    const lostIds = this.ids.filter((id) => !this.outcomes.has(id));
    c.lost = lostIds.length + c.wrong;
    if (lostIds.length > 0) {
      // Where the lost ones are stuck, for the report.
      try {
        const views = await this.client.getBatchResults(lostIds, { waitMs: 0 });
        for (const v of views) c.lostStates[v.state] = (c.lostStates[v.state] ?? 0) + 1;
      } catch (err) {
        c.lostStates[`unknown (${(err as Error).message})`] = lostIds.length;
      }
    }
    const end = lostIds.length > 0 ? Date.now() : this.finishedAt;
    c.seconds = (end - this.startedAt) / 1000;
    if (this.lastError) c.lastServiceError = this.lastError;
    return c;
  }
}
