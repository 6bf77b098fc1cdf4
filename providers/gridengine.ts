/**
 * Grid Engine (SGE / Son of Grid Engine / Debian's gridengine): `qsub -terse SCRIPT` → `1234`; plain `qstat`
 * lists the user's jobs (state in column 5) and a job absent from it has ended; `qdel ID...`.
 */
import type { BlockState, BlockStatus } from './provider.js';
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

const SGE_STATES: Readonly<Record<string, BlockState>> = {
  qw: 'pending', Rq: 'pending', t: 'running',
  hqw: 'held', hRwq: 'held', hr: 'held',
  r: 'running', Rr: 'running', Rt: 'running',
  s: 'held', S: 'held', T: 'held', ts: 'held', Rs: 'held', RS: 'held', RT: 'held',
  Eqw: 'failed', Ehqw: 'failed', EhRqw: 'failed',
  dr: 'cancelled', dt: 'cancelled', dqw: 'cancelled', dRr: 'cancelled', dhqw: 'cancelled',
};

/** Grid Engine; one node per block (a parallel environment gives cores on one host). */
export class GridEngineProvider extends ClusterProvider {
  protected readonly templateName = 'gridengine.sh.hbs';
  protected readonly states = SGE_STATES;
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

  protected statusCommand(): string {
    return 'qstat';
  }

  protected parseStatus(stdout: string, stderr: string, code: number, ids: string[]): Map<string, BlockStatus> {
    if (code !== 0) return this.allUnknown(ids, stderr.trim() || `qstat exited with ${code}`);
    const seen = new Map<string, BlockStatus>();
    for (const line of ClusterProvider.lines(stdout)) {
      const cols = line.split(/\s+/);
      // Array jobs list one row per task: the first row's state stands for the job.
      if (cols.length < 5 || !/^\d+$/.test(cols[0]!) || seen.has(cols[0]!)) continue;
      seen.set(cols[0]!, this.mapState(cols[4]!));
    }
    return new Map(ids.map((id) => [id, seen.get(id) ?? this.gone(id)]));
  }

  protected cancelCommand(ids: string[]): string {
    return `qdel ${ids.join(' ')}`;
  }
}
