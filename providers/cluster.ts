/**
 * The shared base of every batch-scheduler provider. It holds what all schedulers have in common (options,
 * limits, script writing, running the scheduler's commands through the channel and turning failures into
 * SubmitError or 'unknown' states) so that each scheduler's file only says how its commands look and how to
 * read their output.
 */
import PQueue from 'p-queue';
import type { Channel, CommandResult } from './channels/channel.js';
import { LocalChannel } from './channels/local.js';
import type { Launcher } from '../launchers/launcher.js';
import { blockOptionsOf, type BlockRequest, type BlockState, type BlockStatus, type ExecutionProvider, type ProviderBlockOptions, type SubmittedBlock } from './provider.js';
import { ConfigError, SubmitError } from '../src/errors.js';
import { DEFAULTS } from '../src/config/defaults.js';
import {
  checkName, checkNonNegativeInt, checkPath, checkPositiveInt, checkPositiveNumber, checkSchedulerOptions,
  checkWorkerInit, envExports, formatHms, formatWalltime, isSafeJobId, parseWalltime, shellQuote,
  type SchedulerKind,
} from './script-values.js';
import { findTemplate, markValidated, renderJobTemplate, type FoundTemplate } from './templates.js';
import { StatusPacer } from './status-pacer.js';

/** How providers report what they see; the endpoint passes its own logger. */
export type ProviderLogger = (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void;

/** Options every batch-scheduler provider takes (Parsl's names). */
export interface ClusterProviderOptions extends ProviderBlockOptions {
  /** Where scheduler commands run. @default new LocalChannel() */
  channel?: Channel;
  /** How the manager command is started on every node of a block. @default the scheduler's usual launcher */
  launcher?: Launcher;
  /** Cores to ask for on each node. @default not requested (the scheduler's default) */
  cores_per_node?: number;
  /** Memory to ask for on each node, in GB. @default not requested */
  mem_per_node?: number;
  /** Ask for whole nodes, not shared with other jobs. @default false */
  exclusive?: boolean;
  /** Raw header lines added to the script, each starting with the scheduler's prefix (e.g. "#SBATCH --gres=gpu:1"). @default none */
  scheduler_options?: string | string[];
  /** Shell lines run before the managers start (e.g. "module load nodejs"). @default none */
  worker_init?: string | string[];
  /** Seconds before a scheduler command (submit, status, cancel) is killed. @default 30 */
  cmd_timeout?: number;
  /** Status commands allowed per minute (a slow scheduler is asked less often); Infinity: unpaced. @default 12 */
  max_status_rate?: number;
  /** A template to use instead of the scheduler's: an absolute path, or a file name looked up like the default. @default "<scheduler>.sh.hbs" */
  template?: string;
  /** The profile's folder, searched first for templates. @default none */
  profile_dir?: string;
  /** Where log lines go. @default warnings and errors to console.warn */
  logger?: ProviderLogger;
}

/** Option names every cluster provider accepts. */
export const CLUSTER_OPTION_NAMES: readonly string[] = [
  'channel', 'launcher', 'nodes_per_block', 'cores_per_node', 'mem_per_node', 'walltime', 'exclusive',
  'scheduler_options', 'worker_init', 'cmd_timeout', 'max_status_rate', 'template', 'profile_dir', 'logger',
  'init_blocks', 'min_blocks', 'max_blocks', 'parallelism',
];

/** What a subclass tells the base about its scheduler. */
export interface ClusterSpec {
  kind: SchedulerKind;
  /** Makes the scheduler's usual launcher when the profile names none. */
  defaultLauncher: () => Launcher;
  /** Option names this scheduler adds (partition, queue, account, ...). */
  extraOptions?: readonly string[];
  /** Common options this scheduler cannot honour; naming them is a ConfigError, not silently ignored. */
  unsupportedOptions?: Readonly<Record<string, string>>;
}

/**
 * The values a job template sees, all checked or quoted (names matched against NAME_PATTERN, env values
 * quoted, raw lines checked). Subclasses add their own (partition, queue, account, ...).
 */
export interface JobContext {
  scheduler: SchedulerKind;
  job_name: string;
  block_id: string;
  nodes: number;
  /** Managers per node. */
  tasks_per_node: number;
  cores_per_node: number | undefined;
  /** GB per node, as given. */
  mem_per_node: number | undefined;
  /** Memory per node in whole MB (for schedulers that want an integer). */
  mem_mb: number | undefined;
  /** Walltime in this scheduler's format. */
  walltime: string;
  walltime_hms: string;
  walltime_s: number;
  exclusive: boolean;
  scheduler_options: string[];
  worker_init: string[];
  /** `export NAME='value'` lines. */
  env_exports: string[];
  /** The launcher's line that starts the managers. */
  launch_command: string;
  script_dir: string;
  script_path: string;
  stdout_path: string;
  stderr_path: string;
  [extra: string]: unknown;
}

const firstLine = (text: string): string => text.trim().split('\n')[0] ?? '';

/** How long a job that left the queue may be missing from an accounting that answers before it is 'ended'. */
const ACCOUNTING_GRACE_MS = 60_000;

/** What `gone()` says before accounting is asked. */
const GONE: Readonly<BlockStatus> = { state: 'ended', detail: 'unknown: left the queue' };

/** Shared batch-scheduler provider; see the file comment. */
export abstract class ClusterProvider implements ExecutionProvider {
  readonly label: SchedulerKind;
  readonly channel: Channel;
  readonly launcher: Launcher;
  readonly blockOptions: Readonly<ProviderBlockOptions>;
  readonly coresPerNode: number | undefined;
  readonly memPerNode: number | undefined;
  readonly exclusive: boolean;
  readonly schedulerOptions: string[];
  readonly workerInit: string[];
  readonly cmdTimeoutMs: number;
  readonly kind: SchedulerKind;
  protected readonly templateOption: string | undefined;
  protected readonly profileDir: string | undefined;
  private readonly logger: ProviderLogger | undefined;
  private readonly warnedCodes = new Set<string>();
  /** Jobs we asked to cancel: when they end or vanish, that is why. */
  protected readonly cancelledIds = new Set<string>();
  /** Jobs that left the queue and that accounting does not know yet: since when. */
  private readonly goneSince = new Map<string, number>();
  private scriptDirReady = false;
  /** Every scheduler command of this provider goes through this queue: submissions and cancels too. */
  private readonly commands = new PQueue({ concurrency: 2 });
  /** Status polls: one in flight, at most max_status_rate a minute, less often when the scheduler is slow. */
  readonly pacer: StatusPacer;
  /** The last status answer, given to callers the pacer refuses a new command. */
  private lastStatuses = new Map<string, BlockStatus>();
  /** Scheduler commands run so far (for `status --json` and the bench). */
  schedulerCalls = 0;
  private seq = 0;

  /** File name of the scheduler's default template, e.g. "slurm.sh.hbs". */
  protected abstract readonly templateName: string;
  /** The scheduler's state codes → our states. Codes not listed map to 'unknown' (logged once). */
  protected abstract readonly states: Readonly<Record<string, BlockState>>;

  constructor(spec: ClusterSpec, options: ClusterProviderOptions = {}) {
    const kind = (this.kind = this.label = spec.kind);
    const allowed = new Set([...CLUSTER_OPTION_NAMES, ...(spec.extraOptions ?? [])]);
    for (const [key, value] of Object.entries(options)) {
      if (value === undefined) continue;
      const why = spec.unsupportedOptions?.[key];
      if (why !== undefined) throw new ConfigError(`provider.${key}: not supported by the ${kind} provider: ${why}`);
      const known = `known options: ${[...allowed].sort().join(', ')}`;
      if (!allowed.has(key)) throw new ConfigError(`provider.${key}: unknown option for the ${kind} provider`, [known]);
    }
    const opt = (name: string): string => `provider.${name}`;
    // Block fields (limits, nodes_per_block, walltime) are kept raw: src/config/ fills and checks them.
    this.blockOptions = blockOptionsOf(options);
    const { cores_per_node: cores, mem_per_node: mem } = options;
    this.coresPerNode = cores === undefined ? undefined : checkPositiveInt(opt('cores_per_node'), cores);
    this.memPerNode = mem === undefined ? undefined : checkPositiveNumber(opt('mem_per_node'), mem);
    const badExclusive = options.exclusive !== undefined && typeof options.exclusive !== 'boolean';
    if (badExclusive) throw new ConfigError(`${opt('exclusive')}: must be true or false`);
    this.exclusive = options.exclusive ?? false;
    this.schedulerOptions = checkSchedulerOptions(opt('scheduler_options'), options.scheduler_options, kind);
    this.workerInit = checkWorkerInit(opt('worker_init'), options.worker_init);
    this.cmdTimeoutMs = checkPositiveNumber(opt('cmd_timeout'), options.cmd_timeout ?? DEFAULTS.provider.cmd_timeout) * 1000;
    // Infinity: no pacing (a stand-in scheduler in tests).
    const rate = options.max_status_rate === Infinity ? Infinity : checkPositiveNumber(opt('max_status_rate'), options.max_status_rate ?? DEFAULTS.provider.max_status_rate);
    this.pacer = new StatusPacer({ maxPerMinute: rate });
    const badTemplate = options.template !== undefined && (typeof options.template !== 'string' || !options.template);
    if (badTemplate) throw new ConfigError(`${opt('template')}: must be a file name or path`);
    this.templateOption = options.template;
    // A profile loaded by the endpoint gets its own folder searched first, without naming it.
    this.profileDir = options.profile_dir ?? process.env.FUNCX_PROFILE_DIR;
    this.logger = options.logger;
    this.channel = options.channel ?? new LocalChannel();
    this.launcher = options.launcher ?? spec.defaultLauncher();
  }

  /** Scheduler-specific template values (partition, queue, select line, ...), already checked. */
  protected abstract contextExtras(base: JobContext): Record<string, unknown>;
  /** The submit command line for a written script. */
  protected abstract submitCommand(scriptPath: string, ctx: JobContext): string;
  /** The job id in the submit command's output, or undefined when there is none. */
  protected abstract parseJobId(stdout: string): string | undefined;
  /** One command asking the status of all `ids`. */
  protected abstract statusCommand(ids: string[]): string;
  /**
   * Read the status command's output. Ids missing from the map come back 'unknown'. A command that failed for
   * a reason other than "job not known" should give `allUnknown(ids, stderr)`.
   */
  protected abstract parseStatus(stdout: string, stderr: string, code: number, ids: string[]): Map<string, BlockStatus>;
  /** One command cancelling all `ids`. */
  protected abstract cancelCommand(ids: string[]): string;
  /** Error lines of the cancel command that only mean "that job is already gone" (so the cancel succeeded). */
  protected readonly cancelGonePattern: RegExp | undefined = undefined;
  /** Whether a cancel command's result means success: exit 0, or only "already gone" complaints. */
  protected cancelSucceeded(result: CommandResult): boolean {
    if (result.code === 0) return true;
    const complaints = ClusterProvider.lines(result.stderr);
    const gone = this.cancelGonePattern;
    return gone !== undefined && complaints.length > 0 && complaints.every((line) => gone.test(line));
  }

  /** Log through the profile's logger, or warnings to console.warn. */
  protected log(level: 'debug' | 'info' | 'warn' | 'error', message: string): void {
    if (this.logger) this.logger(level, `${this.label}: ${message}`);
    else if (level === 'warn' || level === 'error') console.warn(`[${this.label}] ${message}`);
  }

  /** Map a scheduler code through `states`; unknown codes give 'unknown' and are logged once per code. */
  protected mapState(raw: string, detail?: string): BlockStatus {
    const state = Object.hasOwn(this.states, raw) ? this.states[raw]! : undefined;
    if (state === undefined && !this.warnedCodes.has(raw)) {
      this.warnedCodes.add(raw);
      this.log('warn', `unknown job state code ${JSON.stringify(raw)}; reporting it as 'unknown'`);
    }
    const status: BlockStatus = { state: state ?? 'unknown', raw };
    if (detail) status.detail = detail;
    return status;
  }

  /**
   * A job the scheduler no longer lists has ended: 'cancelled' when we cancelled it; otherwise the status call
   * asks the scheduler's accounting (when the provider has one) and, without an answer, says 'ended' (left the
   * queue, how is not known): never 'completed' on a guess.
   */
  protected gone(id: string): BlockStatus {
    return this.cancelledIds.has(id)
      ? { state: 'cancelled', detail: 'no longer listed by the scheduler after cancel' }
      : { ...GONE };
  }

  /** Whether `status` is the mark `gone()` leaves for the accounting look-up. */
  private static isGone(status: BlockStatus): boolean {
    return status.state === 'ended' && status.detail === GONE.detail;
  }

  /**
   * One command asking the scheduler's accounting how `ids` ended (Slurm `sacct`, PBS `qstat -x`, ...), or
   * undefined when this scheduler has none here.
   */
  protected accountingCommand(_ids: string[]): string | undefined {
    return undefined;
  }

  /** Whether the accounting command answered (some say "not found" for one id with a non-zero exit). */
  protected accountingAnswered(r: CommandResult): boolean {
    return r.code === 0;
  }

  /** Read the accounting command's output; ids it does not name are left out. */
  protected parseAccounting(_stdout: string, _ids: string[]): Map<string, BlockStatus> {
    return new Map();
  }

  /** Ask accounting about jobs that left the queue; those it cannot tell keep 'ended'. */
  private async lookUpAccounting(ids: string[], into: Map<string, BlockStatus>): Promise<void> {
    const command = ids.length === 0 ? undefined : this.accountingCommand(ids);
    if (command === undefined) return;
    const r = await this.run(command);
    if (r.timedOut || !this.accountingAnswered(r)) {
      const why = r.timedOut ? 'timed out' : firstLine(r.stderr) || `exited with ${r.code}`;
      if (!this.warnedCodes.has(`accounting:${why}`)) {
        this.warnedCodes.add(`accounting:${why}`);
        this.log('warn', `accounting "${command}" gave no answer (${why}); jobs that left the queue are reported as ended, not completed`);
      }
      return;
    }
    let found: Map<string, BlockStatus>;
    try {
      found = this.parseAccounting(r.stdout, ids);
    } catch (err) {
      this.log('warn', `could not read "${command}" output: ${(err as Error).message}`);
      return;
    }
    const now = Date.now();
    for (const id of ids) {
      const st = found.get(id);
      if (st !== undefined && st.state !== 'unknown') {
        into.set(id, st);
        this.goneSince.delete(id);
        continue;
      }
      // Accounting answers, but not yet about this job (Grid Engine flushes its file every 15 s): wait a
      // little before saying 'ended'.
      const since = this.goneSince.get(id) ?? now;
      this.goneSince.set(id, since);
      if (now - since < ACCOUNTING_GRACE_MS) into.set(id, { state: 'unknown', raw: 'left the queue', detail: 'not yet in the accounting' });
      else this.goneSince.delete(id);
    }
  }

  /** Every id 'unknown' with `detail` (the caller keeps its last known states). */
  protected allUnknown(ids: string[], detail: string): Map<string, BlockStatus> {
    return new Map(ids.map((id) => [id, { state: 'unknown' as const, detail }]));
  }

  /** Lines of output, trimmed, without blank lines. */
  static lines(text: string): string[] {
    return text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  }

  /** Which template file would be used (for `doctor` and logs). */
  findTemplate(): FoundTemplate {
    return findTemplate(this.templateLookup());
  }

  private templateLookup() {
    return { name: this.templateName, template: this.templateOption, profileDir: this.profileDir };
  }

  /** The validated template context for `request`. */
  buildContext(request: BlockRequest): JobContext {
    const nodes = checkPositiveInt('block request nodesPerBlock', request.nodesPerBlock);
    const walltimeS = parseWalltime(`block request walltimeS (${this.kind} blocks need one)`, request.walltimeS);
    const jobName = checkName('job name', this.adjustJobName(request.jobName));
    const blockId = checkName('block id', request.blockId);
    const scriptDir = checkPath('script_dir', this.channel.scriptDir.replace(/\/+$/, '') || '/');
    const stem = `${scriptDir}/${jobName}.${Date.now().toString(36)}${(this.seq++).toString(36)}`;
    const base: JobContext = {
      scheduler: this.kind,
      job_name: jobName,
      block_id: blockId,
      nodes,
      tasks_per_node: 1,
      cores_per_node: this.coresPerNode,
      mem_per_node: this.memPerNode,
      mem_mb: this.memPerNode === undefined ? undefined : Math.floor(this.memPerNode * 1024),
      walltime: formatWalltime(this.kind, walltimeS),
      walltime_hms: formatHms(walltimeS),
      walltime_s: walltimeS,
      exclusive: this.exclusive,
      scheduler_options: this.schedulerOptions,
      worker_init: this.workerInit,
      env_exports: envExports('block env', request.env),
      launch_command: this.launcher.wrap(request.command, {
        nodesPerBlock: nodes,
        tasksPerNode: 1,
        ...(this.coresPerNode === undefined ? {} : { coresPerNode: this.coresPerNode }),
      }),
      script_dir: scriptDir,
      script_path: `${stem}.sh`,
      stdout_path: `${stem}.stdout`,
      stderr_path: `${stem}.stderr`,
    };
    return markValidated({ ...base, ...this.contextExtras(base) });
  }

  /** Scheduler limits on job names (e.g. characters Grid Engine refuses); identity by default. */
  protected adjustJobName(name: string): string {
    return name;
  }

  private async renderWithContext(request: BlockRequest): Promise<{ script: string; ctx: JobContext }> {
    const ctx = this.buildContext(request);
    const { script } = await renderJobTemplate(this.templateLookup(), ctx);
    return { script, ctx };
  }

  async render(request: BlockRequest): Promise<string> {
    return (await this.renderWithContext(request)).script;
  }

  /** Run a scheduler command through the channel with cmd_timeout. */
  protected run(command: string, cwd?: string): Promise<CommandResult> {
    // Sites throttle users who hammer the scheduler: at most two of our commands at once, whatever asks.
    return this.commands.add(() => this.runNow(command, cwd));
  }

  private runNow(command: string, cwd?: string): Promise<CommandResult> {
    this.schedulerCalls++;
    this.log('debug', `running: ${command}`);
    // The C locale: the scheduler's messages and dates are those the parsers know, whatever the user's.
    return this.channel.run(command, { timeoutMs: this.cmdTimeoutMs, env: { LC_ALL: 'C' }, ...(cwd ? { cwd } : {}) });
  }

  private fail(what: string, command: string, r: CommandResult): SubmitError {
    const why = r.timedOut
      ? `timed out after ${this.cmdTimeoutMs / 1000}s`
      : `exited with ${r.code === null ? 'a signal' : r.code}${r.stderr.trim() ? `: ${firstLine(r.stderr)}` : ''}`;
    return new SubmitError(`${this.label}: ${what} command "${command}" ${why}`, command, r.code, r.stderr);
  }

  /** The command asking when a job of the written script would start, without submitting; undefined: none. */
  protected expectedStartCommand(_scriptPath: string): string | undefined {
    return undefined;
  }

  /** Read that command's output (both streams): epoch ms of the expected start, undefined when not said. */
  protected parseExpectedStart(_output: string): number | undefined {
    return undefined;
  }

  /**
   * When the scheduler expects a block of `request` to start (epoch ms), asked without submitting it (Slurm
   * `sbatch --test-only`), or undefined when it cannot say. Never throws.
   */
  async expectedStart(request: BlockRequest): Promise<number | undefined> {
    try {
      if (this.expectedStartCommand('probe') === undefined) return undefined;
      const { ctx } = await this.writeScript(request);
      const command = this.expectedStartCommand(ctx.script_path)!;
      const r = await this.run(command, ctx.script_dir);
      if (r.timedOut || r.code !== 0) return undefined;
      return this.parseExpectedStart(`${r.stdout}\n${r.stderr}`);
    } catch {
      return undefined;
    }
  }

  private async writeScript(request: BlockRequest): Promise<{ ctx: JobContext }> {
    const { script, ctx } = await this.renderWithContext(request);
    if (!this.scriptDirReady) {
      const mkdir = `mkdir -p ${shellQuote(ctx.script_dir)}`;
      const r = await this.run(mkdir);
      if (r.code !== 0) throw this.fail('script folder', mkdir, r);
      this.scriptDirReady = true;
    }
    try {
      await this.channel.writeFile(ctx.script_path, script, 0o700);
    } catch (err) {
      const msg = (err as Error).message;
      throw new SubmitError(`${this.label}: could not write ${ctx.script_path}: ${msg}`, `write ${ctx.script_path}`, null, msg);
    }
    return { ctx };
  }

  async submit(request: BlockRequest): Promise<SubmittedBlock> {
    const { ctx } = await this.writeScript(request);
    const command = this.submitCommand(ctx.script_path, ctx);
    const r = await this.run(command, ctx.script_dir);
    if (r.code !== 0 || r.timedOut) throw this.fail('submit', command, r);
    const jobId = this.parseJobId(r.stdout);
    if (jobId === undefined || !isSafeJobId(jobId)) {
      const shown = JSON.stringify(r.stdout.trim().slice(0, 200));
      throw new SubmitError(`${this.label}: no job id in the output of "${command}": ${shown}`, command, r.code, r.stderr);
    }
    this.log('info', `submitted block ${ctx.block_id} as job ${jobId} (${ctx.script_path})`);
    return { jobId, scriptPath: ctx.script_path, stdoutPath: ctx.stdout_path };
  }

  /**
   * Status of `jobIds` in one command, paced (see status-pacer.ts): a call refused a new command gets the
   * last answer for the ids it named, and leaves out ids it did not (the caller keeps what it knew).
   */
  async status(jobIds: string[]): Promise<Map<string, BlockStatus>> {
    const r = await this.pacer.run(() => this.statusNow(jobIds));
    if (r.fresh) {
      this.lastStatuses = new Map(r.value);
      return r.value;
    }
    const last = new Map<string, BlockStatus>();
    for (const id of jobIds) {
      const st = this.lastStatuses.get(id);
      if (st !== undefined) last.set(id, st);
    }
    return last;
  }

  private async statusNow(jobIds: string[]): Promise<Map<string, BlockStatus>> {
    const result = new Map<string, BlockStatus>();
    const ids = [...new Set(jobIds)].filter((id) => {
      if (isSafeJobId(id)) return true;
      result.set(id, { state: 'unknown', detail: 'not a job id this scheduler could have given' });
      return false;
    });
    if (ids.length === 0) return result;
    const command = this.statusCommand(ids);
    const r = await this.run(command);
    let parsed: Map<string, BlockStatus>;
    if (r.timedOut || r.code === null) {
      parsed = this.allUnknown(ids, this.fail('status', command, r).message);
    } else {
      try {
        parsed = this.parseStatus(r.stdout, r.stderr, r.code, ids);
      } catch (err) {
        parsed = this.allUnknown(ids, `could not read "${command}" output: ${(err as Error).message}`);
      }
    }
    await this.lookUpAccounting(ids.filter((id) => { const st = parsed.get(id); return st !== undefined && ClusterProvider.isGone(st); }), parsed);
    let logged = false;
    for (const id of ids) {
      let status = parsed.get(id) ?? { state: 'unknown', detail: `"${command}" said nothing about it` };
      if (this.cancelledIds.has(id) && (status.state === 'completed' || status.state === 'failed' || status.state === 'ended')) {
        status = { ...status, state: 'cancelled' };
      }
      if (status.state === 'unknown' && status.raw === undefined && !logged) {
        logged = true;
        this.log('warn', `status of ${ids.join(' ')} unknown: ${status.detail ?? ''}`);
      }
      result.set(id, status);
    }
    return result;
  }

  async cancel(jobIds: string[]): Promise<void> {
    const ids = [...new Set(jobIds)];
    const bad = ids.filter((id) => !isSafeJobId(id));
    if (bad.length) throw new SubmitError(`${this.label}: refusing to cancel ${JSON.stringify(bad)}: not job ids`, '', null, '');
    if (ids.length === 0) return;
    const command = this.cancelCommand(ids);
    for (const id of ids) this.cancelledIds.add(id);
    const r = await this.run(command);
    if (r.timedOut || !this.cancelSucceeded(r)) throw this.fail('cancel', command, r);
    this.log('info', `cancelled ${ids.join(' ')}`);
  }

  async close(): Promise<void> {
    await this.channel.close();
  }
}
