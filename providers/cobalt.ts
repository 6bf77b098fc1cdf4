/**
 * Cobalt (ALCF): options go on the qsub line, `qsub -n NODES -t MINUTES -q QUEUE -A PROJECT --mode script
 * SCRIPT` → the job id alone; `qstat -u $USER` lists the user's jobs (state in column 5); `qdel ID...`.
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

const COBALT_STATES: Readonly<Record<string, BlockState>> = {
  queued: 'pending', starting: 'pending',
  user_hold: 'held', dep_hold: 'held', admin_hold: 'held', hold: 'held',
  running: 'running', exiting: 'running', killing: 'running',
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

  protected statusCommand(): string {
    return 'qstat -u "${USER:-$(id -un)}"';
  }

  protected parseStatus(stdout: string, stderr: string, code: number, ids: string[]): Map<string, BlockStatus> {
    if (code !== 0) return this.allUnknown(ids, stderr.trim() || `qstat exited with ${code}`);
    const seen = new Map<string, BlockStatus>();
    for (const line of ClusterProvider.lines(stdout)) {
      const cols = line.split(/\s+/);
      if (cols.length < 5 || !/^\d+$/.test(cols[0]!)) continue; // header and the "====" line
      seen.set(cols[0]!, this.mapState(cols[4]!));
    }
    return new Map(ids.map((id) => [id, seen.get(id) ?? this.gone(id)]));
  }

  protected cancelCommand(ids: string[]): string {
    return `qdel ${ids.join(' ')}`;
  }
}
