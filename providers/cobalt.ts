/**
 * Cobalt (ALCF): options go on the qsub line, `qsub -n NODES -t MINUTES -q QUEUE -A PROJECT --mode script
 * SCRIPT` → the job id alone; `qstat --header=JobId:State ID...` with QSTAT_HEADER set to the same (the
 * user's QSTAT_HEADER would otherwise choose and order the columns); `qdel ID...`. Finished jobs vanish, and
 * Cobalt keeps no accounting a user can query: they end as 'ended'.
 */
import type { BlockState, BlockStatus } from './provider.js';
import { ClusterProvider, type ClusterProviderOptions, type JobContext } from './cluster.js';
import { checkOptionalName, shellQuote } from './script-values.js';
import { AprunLauncher } from '../launchers/aprun.js';

/** Options of the Cobalt provider. */
export interface CobaltProviderOptions extends ClusterProviderOptions {
  /** `qsub -q`. @default the machine's default queue */
  queue?: string;
  /** `qsub -A` (the project / allocation charged). @default none */
  account?: string;
}

/** Every job state Cobalt's qstat prints. */
const COBALT_STATES: Readonly<Record<string, BlockState>> = {
  queued: 'pending',
  // Nodes allocated, the job launching: it holds its allocation.
  starting: 'running',
  running: 'running',
  // The script ended or was killed; the allocation is being freed.
  exiting: 'running', killing: 'running',
  user_hold: 'held', admin_hold: 'held', dep_hold: 'held', maxrun_hold: 'held', hold: 'held',
  // A job it depends on failed: it will never run.
  dep_fail: 'held',
  done: 'completed',
};

/** Cobalt. Nodes are always whole; memory is not requested. */
export class CobaltProvider extends ClusterProvider {
  protected readonly templateName = 'cobalt.sh.hbs';
  protected readonly states = COBALT_STATES;
  protected override readonly cancelGonePattern = /not found|does not exist|Failed to remove/i;
  readonly queue: string | undefined;
  readonly account: string | undefined;

  constructor(options: CobaltProviderOptions = {}) {
    super(
      {
        kind: 'cobalt',
        defaultLauncher: () => new AprunLauncher(),
        extraOptions: ['queue', 'account'],
        unsupportedOptions: {
          mem_per_node: 'Cobalt allocates whole nodes with all their memory',
          exclusive: 'Cobalt nodes are always exclusive',
        },
      },
      options,
    );
    this.queue = checkOptionalName('provider.queue', options.queue);
    this.account = checkOptionalName('provider.account', options.account);
  }

  protected contextExtras(): Record<string, unknown> {
    return { queue: this.queue, account: this.account };
  }

  protected submitCommand(scriptPath: string, ctx: JobContext): string {
    const parts = ['qsub', '-n', String(ctx.nodes), '-t', ctx.walltime];
    if (this.queue) parts.push('-q', this.queue);
    if (this.account) parts.push('-A', this.account);
    parts.push('--jobname', ctx.job_name, '-o', shellQuote(ctx.stdout_path), '-e', shellQuote(ctx.stderr_path));
    parts.push('--mode', 'script', shellQuote(scriptPath));
    return parts.join(' ');
  }

  protected parseJobId(stdout: string): string | undefined {
    // Cobalt may print warnings first; the id is the last line.
    const last = ClusterProvider.lines(stdout).at(-1);
    return last && /^\d+$/.test(last) ? last : undefined;
  }

  protected statusCommand(ids: string[]): string {
    return `QSTAT_HEADER=JobId:State qstat --header=JobId:State ${ids.join(' ')}`;
  }

  protected parseStatus(stdout: string, stderr: string, code: number, ids: string[]): Map<string, BlockStatus> {
    if (code !== 0) return this.allUnknown(ids, stderr.trim() || `qstat exited with ${code}`);
    const lines = ClusterProvider.lines(stdout);
    // Cobalt prints nothing at all when none of the jobs is left; anything else must be our two columns.
    if (lines.length > 0 && !/^JobI[dD]\s+State$/.test(lines[0]!)) {
      return this.allUnknown(ids, `qstat did not print the columns asked for: ${JSON.stringify(lines[0]!.slice(0, 120))}`);
    }
    const seen = new Map<string, BlockStatus>();
    for (const line of lines.slice(1)) {
      const cols = line.split(/\s+/);
      if (/^=+$/.test(line)) continue;
      if (cols.length !== 2 || !/^\d+$/.test(cols[0]!)) {
        return this.allUnknown(ids, `qstat printed a line it was not asked for: ${JSON.stringify(line.slice(0, 120))}`);
      }
      const status = this.mapState(cols[1]!);
      if (cols[1] === 'dep_fail') {
        status.stuck = true;
        status.reason = 'a job it depends on failed';
      } else if (status.state === 'held' || status.state === 'pending') status.reason = cols[1]!;
      seen.set(cols[0]!, status);
    }
    return new Map(ids.map((id) => [id, seen.get(id) ?? this.gone(id)]));
  }

  protected cancelCommand(ids: string[]): string {
    return `qdel ${ids.join(' ')}`;
  }
}
