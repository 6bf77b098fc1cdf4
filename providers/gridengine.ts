/**
 * Grid Engine (SGE / Son of Grid Engine / Debian's gridengine): `qsub -terse SCRIPT` → `1234`;
 * `qstat -xml -u USER` lists the user's jobs in a layout that ~/.sge_qstat cannot change (the plain table's
 * columns move with it), and a job absent from a well-formed answer has left the queue (then `qacct -j`
 * says how it ended); `qdel ID...`. A job in error (Eqw) would wait forever, and start untracked if an
 * admin cleared the error: it is deleted as soon as it is seen, with its error reason from `qstat -j`.
 */
import type { BlockState, BlockStatus } from './provider.js';
import { isSafeJobId } from './script-values.js';
import { ClusterProvider, type ClusterProviderOptions, type JobContext } from './cluster.js';
import { ConfigError } from '../src/errors.js';
import { checkName, checkOptionalName, shellQuote } from './script-values.js';
import { SingleNodeLauncher } from '../launchers/single-node.js';

/** Options of the Grid Engine provider. */
export interface GridEngineProviderOptions extends ClusterProviderOptions {
  /** `#$ -q`. @default the cluster's default queue */
  queue?: string;
  /** `#$ -P` (the project charged). @default none */
  project?: string;
  /** Parallel environment used for `cores_per_node` (`#$ -pe NAME CORES`). @default "smp" */
  parallel_environment?: string;
}

/**
 * A state is a string of the qstat(1) letters: d(eletion), E(rror), h(old), r(unning), R(estarted),
 * s(uspended), S(uspended by the queue), t(ransferring), T(hreshold), w(aiting), q(ueued). The letters that
 * matter most win: an error is final, a deletion is under way, a suspension or a hold stops it, and only
 * then is it running or waiting. A hold on a running job (hr) touches only tasks not yet started: running.
 */
export function gridEngineState(code: string): BlockState | undefined {
  if (!/^[dEhrRsStTwq]+$/.test(code)) return undefined;
  if (code.includes('E')) return 'failed';
  if (code.includes('d')) return 'cancelled';
  if (/[sST]/.test(code)) return 'held';
  if (/[rt]/.test(code)) return 'running';
  if (code.includes('h')) return 'held';
  if (/[wq]/.test(code)) return 'pending';
  return undefined;
}

/** The job_list entries of `qstat -xml`: id and state; undefined when the text is not that document. */
export function parseQstatXml(xml: string): Array<{ id: string; state: string }> | undefined {
  if (!/<job_info[\s>]/.test(xml) || !/<\/job_info>\s*$/.test(xml)) return undefined;
  const jobs: Array<{ id: string; state: string }> = [];
  for (const m of xml.matchAll(/<job_list\b[^>]*>([\s\S]*?)<\/job_list>/g)) {
    const id = /<JB_job_number>\s*(\d+)\s*<\/JB_job_number>/.exec(m[1]!)?.[1];
    const state = /<state>\s*([^<\s]*)\s*<\/state>/.exec(m[1]!)?.[1];
    if (id !== undefined && state !== undefined) jobs.push({ id, state });
  }
  return jobs;
}

/** `qacct -j ID` blocks → final states (failed: the job could not start; exit_status: the script's code). */
export function parseQacct(text: string): Map<string, BlockStatus> {
  const out = new Map<string, BlockStatus>();
  for (const block of text.split(/^=+\s*$/m)) {
    const field = (name: string): string | undefined => new RegExp(`^${name}\\s+(.*?)\\s*$`, 'm').exec(block)?.[1];
    const id = field('jobnumber');
    if (id === undefined) continue;
    const failed = field('failed') ?? '0';
    const exit = Number((field('exit_status') ?? 'NaN').split(/\s/)[0]);
    const failCode = Number(failed.split(/\s/)[0]);
    let state: BlockState = 'completed';
    // Exit 137 with failed 100 after h_rt: killed at its limit; failed 37 ("qmaster enforced h_rt limit").
    if (/h_rt|wallclock|limit/i.test(failed) || failCode === 37) state = 'timeout';
    else if (field('deleted_by') !== undefined && field('deleted_by') !== 'NONE') state = 'cancelled';
    else if (failCode !== 0) state = 'failed';
    else if (Number.isFinite(exit) && exit !== 0) state = 'failed';
    const status: BlockStatus = { state, raw: `failed ${failed}`, detail: `qacct: failed ${failed}, exit_status ${(field('exit_status') ?? '?').replace(/\s+/g, ' ')}` };
    if (Number.isFinite(exit)) status.exitCode = exit;
    out.set(id, status);
  }
  return out;
}

/** Grid Engine; one node per block (a parallel environment gives cores on one host). */
export class GridEngineProvider extends ClusterProvider {
  protected readonly templateName = 'gridengine.sh.hbs';
  protected readonly states: Readonly<Record<string, BlockState>> = {};
  protected override readonly cancelGonePattern = /does not exist/i;
  readonly queue: string | undefined;
  readonly project: string | undefined;
  readonly parallelEnvironment: string;

  constructor(options: GridEngineProviderOptions = {}) {
    super(
      {
        kind: 'gridengine',
        defaultLauncher: () => new SingleNodeLauncher(),
        extraOptions: ['queue', 'project', 'parallel_environment'],
        unsupportedOptions: {
          mem_per_node: 'memory resources differ between Grid Engine sites; add e.g. "#$ -l h_vmem=4G" to scheduler_options',
          exclusive: 'exclusive hosts are a site-specific complex; add it to scheduler_options',
        },
      },
      options,
    );
    const nodes = this.blockOptions.nodes_per_block;
    if (nodes !== undefined && nodes !== 1) throw GridEngineProvider.oneNode(nodes);
    this.queue = checkOptionalName('provider.queue', options.queue);
    this.project = checkOptionalName('provider.project', options.project);
    this.parallelEnvironment = checkName('provider.parallel_environment', options.parallel_environment ?? 'smp');
  }

  private static oneNode(n: number): ConfigError {
    return new ConfigError(`provider.nodes_per_block: ${n}, but Grid Engine blocks are one host each`, [
      'use nodes_per_block: 1 and raise max_blocks instead',
    ]);
  }

  /** Grid Engine refuses ':' and '@' in job names and names that start with a digit. */
  protected override adjustJobName(name: string): string {
    const clean = name.replace(/[:@]/g, '_');
    return /^\d/.test(clean) ? `j${clean}` : clean;
  }

  protected contextExtras(base: JobContext): Record<string, unknown> {
    if (base.nodes !== 1) throw GridEngineProvider.oneNode(base.nodes);
    return { queue: this.queue, project: this.project, pe: this.parallelEnvironment };
  }

  protected submitCommand(scriptPath: string): string {
    return `qsub -terse ${shellQuote(scriptPath)}`;
  }

  protected parseJobId(stdout: string): string | undefined {
    const last = ClusterProvider.lines(stdout).at(-1) ?? '';
    // -terse prints "1234" (array jobs "1234.1-10:1"); without it: Your job 1234 ("name") has been submitted
    return /^(\d+)(\.\d+-\d+:\d+)?$/.exec(last)?.[1] ?? /Your job(?:-array)? (\d+)/.exec(stdout)?.[1];
  }

  /** Codes are read letter by letter (see gridEngineState), not from a table. */
  protected override mapState(raw: string, detail?: string): BlockStatus {
    const state = gridEngineState(raw);
    if (state === undefined) return super.mapState(raw, detail);
    return detail ? { state, raw, detail } : { state, raw };
  }

  protected statusCommand(): string {
    return 'qstat -xml -u "$(id -un)"';
  }

  protected parseStatus(stdout: string, stderr: string, code: number, ids: string[]): Map<string, BlockStatus> {
    if (code !== 0) return this.allUnknown(ids, stderr.trim() || `qstat exited with ${code}`);
    const jobs = parseQstatXml(stdout.trim());
    if (jobs === undefined) return this.allUnknown(ids, `qstat -xml did not print its document: ${JSON.stringify(stdout.trim().slice(0, 120))}`);
    const seen = new Map<string, BlockStatus>();
    for (const { id, state } of jobs) {
      // Array jobs list one entry per task: the first stands for the job.
      if (seen.has(id)) continue;
      const status = this.mapState(state);
      if (status.state === 'held' || status.state === 'pending' || status.state === 'failed') status.reason = state;
      seen.set(id, status);
    }
    return new Map(ids.map((id) => [id, seen.get(id) ?? this.gone(id)]));
  }

  protected override accountingCommand(ids: string[]): string {
    // One qacct per job (it takes one -j); a job not yet in the accounting file prints an error and is left out.
    return ids.map((id) => `qacct -j ${id} 2>/dev/null`).join('; ') + '; true';
  }

  protected override parseAccounting(stdout: string): Map<string, BlockStatus> {
    return parseQacct(stdout);
  }

  /**
   * Jobs in error (Eqw) are deleted once seen, so they can never start later untracked; the error reason
   * `qstat -j` gives becomes their detail.
   */
  override async status(jobIds: string[]): Promise<Map<string, BlockStatus>> {
    const result = await super.status(jobIds);
    const inError = [...result].filter(([id, st]) => st.state === 'failed' && st.raw?.includes('E') && isSafeJobId(id) && !this.cancelledIds.has(id));
    if (inError.length === 0) return result;
    const ids = inError.map(([id]) => id);
    const why = await this.run(`qstat -j ${ids.join(',')}`);
    const reasons = [...why.stdout.matchAll(/^error reason\s+\d+:\s*(.*)$/gm)].map((m) => m[1]!.trim());
    for (const [id, st] of inError) {
      st.detail = reasons.length > 0 ? reasons.join('; ') : 'job in error state';
      st.reason = st.detail;
      result.set(id, st);
    }
    try {
      await this.cancel(ids);
      this.log('warn', `deleted job(s) ${ids.join(' ')} in error state: ${reasons.join('; ') || 'no reason given'}`);
    } catch (err) {
      this.log('error', `could not delete job(s) ${ids.join(' ')} in error state: ${(err as Error).message}`);
    }
    return result;
  }

  protected cancelCommand(ids: string[]): string {
    return `qdel ${ids.join(' ')}`;
  }
}
