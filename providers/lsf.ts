/**
 * IBM Spectrum LSF: `bsub < SCRIPT` (so bsub reads the #BSUB lines) → `Job <1234> is submitted to queue
 * <normal>.`; `bjobs -noheader -o "jobid stat exit_code pend_reason delimiter='|'" ID...` (LSF 9.1 and later;
 * older LSF, which has no `-o`, gets `bjobs -w ID...` from then on); `bkill ID...`. Lines such as "LSF is
 * processing your request. Please wait ..." may come first on either stream. bjobs shows a finished job for
 * CLEAN_PERIOD (an hour by default); after that it is "not found", and `bhist -l ID...` (the event log) tells
 * how it ended (see bhist.ts).
 */
import type { BlockState, BlockStatus } from './provider.js';
import { ClusterProvider, type ClusterProviderOptions, type JobContext } from './cluster.js';
import { ConfigError } from '../src/errors.js';
import { checkOptionalName, shellQuote } from './script-values.js';
import { JsrunLauncher } from '../launchers/jsrun.js';
import type { CommandResult } from './channels/channel.js';
import { parseBhist } from './bhist.js';

/** Options of the LSF provider. */
export interface LSFProviderOptions extends ClusterProviderOptions {
  /** `#BSUB -q`. @default the cluster's default queue */
  queue?: string;
  /** `#BSUB -P` (the project charged). @default none */
  project?: string;
  /**
   * Ask for whole nodes with `-nnodes N` (IBM CSM systems such as Summit); when false, ask for
   * `-n NODES*cores_per_node` slots spread `cores_per_node` per host (needs cores_per_node).
   * @default true
   */
  request_by_nodes?: boolean;
}

/** Every job state of the bjobs manual. */
const LSF_STATES: Readonly<Record<string, BlockState>> = {
  PEND: 'pending', WAIT: 'pending', PROV: 'pending',
  RUN: 'running',
  DONE: 'completed',
  EXIT: 'failed',
  // Held while pending (bstop), suspended by the user, by LSF (load, a preempting job).
  PSUSP: 'held', USUSP: 'held', SSUSP: 'held',
  // Killed while its host was unreachable: it has ended, and not well.
  ZOMBI: 'failed',
  // Its host is unreachable: LSF does not know.
  UNKWN: 'unknown',
};

/** Lines LSF prints while the master is busy, on either stream. */
const PREAMBLE = /^(LSF is processing your request|LSF daemon \(LIM\) not responding|Please wait|Cannot connect to LSF\. Please wait)/i;
/** Pending reasons that waiting will not change. */
const STUCK_REASON = /never satisfied|is not used by the queue|not a valid|invalid|User has no access/i;

/** LSF. */
export class LSFProvider extends ClusterProvider {
  protected readonly templateName = 'lsf.sh.hbs';
  protected readonly states = LSF_STATES;
  protected override readonly cancelGonePattern = /already finished|is not found|No matching job/i;
  readonly queue: string | undefined;
  readonly project: string | undefined;
  readonly requestByNodes: boolean;

  constructor(options: LSFProviderOptions = {}) {
    super(
      {
        kind: 'lsf',
        defaultLauncher: () => new JsrunLauncher(),
        extraOptions: ['queue', 'project', 'request_by_nodes'],
      },
      options,
    );
    this.queue = checkOptionalName('provider.queue', options.queue);
    this.project = checkOptionalName('provider.project', options.project);
    if (options.request_by_nodes !== undefined && typeof options.request_by_nodes !== 'boolean') {
      throw new ConfigError('provider.request_by_nodes: must be true or false');
    }
    this.requestByNodes = options.request_by_nodes ?? true;
    if (!this.requestByNodes && this.coresPerNode === undefined) {
      throw new ConfigError('provider.request_by_nodes is false, so provider.cores_per_node must be set', [
        'set cores_per_node to the cores of one host, or leave request_by_nodes at true',
      ]);
    }
  }

  protected contextExtras(base: JobContext): Record<string, unknown> {
    const cores = base.cores_per_node ?? 1;
    return {
      queue: this.queue,
      project: this.project,
      request_by_nodes: this.requestByNodes,
      slots: base.nodes * cores,
      ptile: cores,
    };
  }

  protected submitCommand(scriptPath: string): string {
    return `bsub < ${shellQuote(scriptPath)}`;
  }

  protected parseJobId(stdout: string): string | undefined {
    return /Job <(\d+)> is submitted/.exec(stdout)?.[1];
  }

  /** Set once bjobs refuses `-o` (LSF before 9.1): `bjobs -w` from then on. */
  private plainOnly = false;

  protected statusCommand(ids: string[]): string {
    return this.plainOnly
      ? `bjobs -w ${ids.join(' ')}`
      : `bjobs -noheader -o "jobid stat exit_code pend_reason delimiter='|'" ${ids.join(' ')}`;
  }

  protected parseStatus(stdout: string, stderr: string, code: number, ids: string[]): Map<string, BlockStatus> {
    const out = ClusterProvider.lines(stdout).filter((l) => !PREAMBLE.test(l));
    const err = ClusterProvider.lines(stderr).filter((l) => !PREAMBLE.test(l));
    if (!this.plainOnly && code !== 0 && err.some((l) => /-o: Illegal option|Illegal option.*-o|Unknown field name/i.test(l))) {
      this.plainOnly = true;
      this.log('info', 'bjobs has no -o here: reading bjobs -w from now on');
      return this.allUnknown(ids, 'bjobs has no -o: asking with -w next time');
    }
    // "Job <N> is not found" (exit 255) means the job left LSF's memory: it ended.
    const notFound = new Set([...stderr.matchAll(/Job <(\d+)> is not found/g), ...stdout.matchAll(/Job <(\d+)> is not found/g)].map((m) => m[1]!));
    const complaints = err.filter((l) => !/is not found/.test(l));
    if (code !== 0 && (complaints.length > 0 || notFound.size === 0)) {
      return this.allUnknown(ids, complaints.join(' ') || stderr.trim() || `bjobs exited with ${code}`);
    }
    const seen = new Map<string, BlockStatus>();
    for (const line of out) {
      if (/is not found/.test(line) || /^JOBID\s/.test(line)) continue;
      const row = this.plainOnly ? this.plainRow(line) : this.formatRow(line);
      if (row === undefined) return this.allUnknown(ids, `bjobs printed a line it was not asked for: ${JSON.stringify(line.slice(0, 120))}`);
      seen.set(row.id, row.status);
    }
    const result = new Map<string, BlockStatus>();
    for (const id of ids) {
      const st = seen.get(id);
      if (st !== undefined) result.set(id, st);
      else if (notFound.has(id)) result.set(id, this.gone(id));
    }
    return result;
  }

  /** "1234|PEND|-|New job is waiting for scheduling;" */
  private formatRow(line: string): { id: string; status: BlockStatus } | undefined {
    const [id, stat, exitText, ...reasonParts] = line.split('|').map((x) => x.trim());
    if (!id || !/^\d+$/.test(id) || !stat) return undefined;
    const status = this.mapState(stat);
    const reason = reasonParts.join('|').replace(/;\s*$/, '').trim();
    if (reason && reason !== '-' && status.state !== 'running' && status.state !== 'completed') {
      status.reason = reason;
      if (status.state === 'pending' && STUCK_REASON.test(reason)) status.stuck = true;
    }
    if (exitText && /^\d+$/.test(exitText) && (status.state === 'failed' || status.state === 'completed')) {
      status.exitCode = Number(exitText);
      status.detail = `exit code ${exitText}`;
    }
    return { id, status };
  }

  /** `bjobs -w`: "JOBID USER STAT QUEUE FROM_HOST EXEC_HOST JOB_NAME SUBMIT_TIME"; the name may hold spaces. */
  private plainRow(line: string): { id: string; status: BlockStatus } | undefined {
    const cols = line.split(/\s+/);
    if (cols.length < 3 || !/^\d+$/.test(cols[0]!)) return undefined;
    return { id: cols[0]!, status: this.mapState(cols[2]!) };
  }

  protected cancelCommand(ids: string[]): string {
    return `bkill ${ids.join(' ')}`;
  }

  /** The event log knows jobs bjobs has forgotten. */
  protected override accountingCommand(ids: string[]): string {
    return `bhist -l ${ids.join(' ')}`;
  }

  /** bhist exits non-zero when one id is not in the log; the others are still printed. */
  protected override accountingAnswered(r: CommandResult): boolean {
    return r.code === 0 || /^Job <\d+>/m.test(r.stdout);
  }

  protected override parseAccounting(stdout: string): Map<string, BlockStatus> {
    return parseBhist(stdout);
  }
}
