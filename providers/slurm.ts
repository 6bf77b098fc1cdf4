/**
 * Slurm: `sbatch SCRIPT`, `squeue --noheader --format='%i %t' --states=all --job=ID,...`, `scancel ID...`.
 * Finished jobs drop out of squeue after MinJobAge, so an id squeue no longer lists has ended.
 */
import type { BlockState, BlockStatus } from './provider.js';
import { ClusterProvider, type ClusterProviderOptions, type JobContext } from './cluster.js';
import { checkOptionalName, shellQuote } from './script-values.js';
import { SrunLauncher } from '../launchers/srun.js';

/** Options of the Slurm provider (Parsl's names). */
export interface SlurmProviderOptions extends ClusterProviderOptions {
  /** `#SBATCH --partition`. @default the cluster's default partition */
  partition?: string;
  /** `#SBATCH --account`. @default the user's default account */
  account?: string;
  /** `#SBATCH --qos`. @default none */
  qos?: string;
  /** `#SBATCH --constraint` (node features). @default none */
  constraint?: string;
}

/** squeue's compact state codes. */
const SLURM_STATES: Readonly<Record<string, BlockState>> = {
  PD: 'pending', CF: 'pending', RQ: 'pending', RF: 'pending',
  R: 'running', CG: 'running', SI: 'running', SO: 'running', RS: 'running',
  CD: 'completed',
  CA: 'cancelled',
  F: 'failed', NF: 'failed', BF: 'failed', OOM: 'failed', RV: 'failed', SE: 'failed', PR: 'failed',
  TO: 'timeout', DL: 'timeout',
  S: 'held', ST: 'held', RH: 'held', RD: 'held',
};

/** A Slurm cluster, reached through the channel (local or SSH). */
export class SlurmProvider extends ClusterProvider {
  protected readonly templateName = 'slurm.sh.hbs';
  protected readonly states = SLURM_STATES;
  readonly partition: string | undefined;
  readonly account: string | undefined;
  readonly qos: string | undefined;
  readonly constraint: string | undefined;

  constructor(options: SlurmProviderOptions = {}) {
    super(
      {
        kind: 'slurm',
        defaultLauncher: () => new SrunLauncher(),
        extraOptions: ['partition', 'account', 'qos', 'constraint'],
      },
      options,
    );
    this.partition = checkOptionalName('provider.partition', options.partition);
    this.account = checkOptionalName('provider.account', options.account);
    this.qos = checkOptionalName('provider.qos', options.qos);
    this.constraint = checkOptionalName('provider.constraint', options.constraint);
  }

  protected contextExtras(base: JobContext): Record<string, unknown> {
    const gb = base.mem_per_node;
    return {
      partition: this.partition,
      account: this.account,
      qos: this.qos,
      constraint: this.constraint,
      // Whole GB read best ("--mem=4G"); fractions go in MB since --mem takes integers.
      mem: gb === undefined ? undefined : Number.isInteger(gb) ? `${gb}G` : `${base.mem_mb}M`,
    };
  }

  protected submitCommand(scriptPath: string): string {
    return `sbatch ${shellQuote(scriptPath)}`;
  }

  protected parseJobId(stdout: string): string | undefined {
    const m = /Submitted batch job (\d+)/.exec(stdout);
    if (m) return m[1];
    // --parsable (site wrappers add it): "42" or "42;cluster".
    const last = ClusterProvider.lines(stdout).at(-1);
    return last && /^\d+(;\S+)?$/.test(last) ? last.split(';')[0] : undefined;
  }

  protected statusCommand(ids: string[]): string {
    return `squeue --noheader --format='%i %t' --states=all --job=${ids.join(',')}`;
  }

  protected parseStatus(stdout: string, stderr: string, code: number, ids: string[]): Map<string, BlockStatus> {
    // An id squeue no longer knows makes it exit 1 with this message; that is news (the job ended), not failure.
    if (code !== 0 && !/Invalid job id specified/i.test(stderr)) {
      return this.allUnknown(ids, stderr.trim() || `squeue exited with ${code}`);
    }
    const seen = new Map<string, BlockStatus>();
    for (const line of ClusterProvider.lines(stdout)) {
      const [id, code] = line.split(/\s+/);
      if (id && code) seen.set(id, this.mapState(code));
    }
    return new Map(ids.map((id) => [id, seen.get(id) ?? this.gone(id)]));
  }

  protected cancelCommand(ids: string[]): string {
    return `scancel ${ids.join(' ')}`;
  }
}
