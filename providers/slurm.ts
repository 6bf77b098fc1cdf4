/**
 * Slurm: `sbatch SCRIPT`, `squeue --noheader --format='%i|%t|%r' --states=all --job=ID,...` (state and
 * pending reason: a held job is PD with reason JobHeldUser), `scancel ID...`. Finished jobs drop out of
 * squeue after MinJobAge; then `sacct` says how they ended. Jobs on another cluster of a multi-cluster
 * site (`clusters`, or `--clusters` in scheduler_options) carry it in their id, "42.cluster", and every
 * command names it with `-M`. An explicit `--format`/`-o` wins over SQUEUE_FORMAT and SACCT_FORMAT.
 */
import type { BlockStatus } from './provider.js';
import { ClusterProvider, type ClusterProviderOptions, type JobContext } from './cluster.js';
import { checkOptionalName, shellQuote } from './script-values.js';
import { SrunLauncher } from '../launchers/srun.js';
import { SLURM_STATES, parseSacct, slurmStatus } from './slurm-codes.js';

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
  /** Submit to this cluster of a multi-cluster site (`sbatch -M`); status and cancel name it too. @default the local cluster */
  clusters?: string;
}

/** "42" or "42.cluster" → the number and the cluster. */
export function splitSlurmId(id: string): { job: string; cluster: string | undefined } {
  const dot = id.indexOf('.');
  return dot < 0 ? { job: id, cluster: undefined } : { job: id.slice(0, dot), cluster: id.slice(dot + 1) };
}

/** sbatch output → our id: "Submitted batch job 42[ on cluster X]", or --parsable "42[;X]". */
export function parseSbatch(stdout: string): string | undefined {
  const m = /Submitted batch job (\d+)(?: on cluster ([A-Za-z0-9_-]+))?/.exec(stdout);
  if (m) return m[2] ? `${m[1]}.${m[2]}` : m[1];
  const last = ClusterProvider.lines(stdout).at(-1);
  const p = last === undefined ? null : /^(\d+)(?:;([A-Za-z0-9_-]+))?$/.exec(last);
  return p ? (p[2] ? `${p[1]}.${p[2]}` : p[1]) : undefined;
}

/** Ids grouped by cluster ('' for the local one). */
function byCluster(ids: string[], fallback: string | undefined): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const id of ids) {
    const { job, cluster } = splitSlurmId(id);
    const key = cluster ?? fallback ?? '';
    groups.set(key, [...(groups.get(key) ?? []), job]);
  }
  return groups;
}

/** One command per cluster, joined so that each prints its own section. */
function perCluster(ids: string[], fallback: string | undefined, make: (jobs: string[], m: string) => string): string {
  return [...byCluster(ids, fallback)].map(([cluster, jobs]) => make(jobs, cluster ? ` -M ${cluster}` : '')).join('; ');
}

/** A Slurm cluster, reached through the channel (local or SSH). */
export class SlurmProvider extends ClusterProvider {
  protected readonly templateName = 'slurm.sh.hbs';
  protected readonly states = SLURM_STATES;
  readonly partition: string | undefined;
  readonly account: string | undefined;
  readonly qos: string | undefined;
  readonly constraint: string | undefined;
  readonly clusters: string | undefined;

  constructor(options: SlurmProviderOptions = {}) {
    super(
      {
        kind: 'slurm',
        defaultLauncher: () => new SrunLauncher(),
        extraOptions: ['partition', 'account', 'qos', 'constraint', 'clusters'],
      },
      options,
    );
    this.partition = checkOptionalName('provider.partition', options.partition);
    this.account = checkOptionalName('provider.account', options.account);
    this.qos = checkOptionalName('provider.qos', options.qos);
    this.constraint = checkOptionalName('provider.constraint', options.constraint);
    this.clusters = checkOptionalName('provider.clusters', options.clusters);
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
    return `sbatch${this.clusters ? ` -M ${this.clusters}` : ''} ${shellQuote(scriptPath)}`;
  }

  /** `sbatch --test-only`: when the job would start, without submitting it (the time in ISO form, whatever SLURM_TIME_FORMAT). */
  protected override expectedStartCommand(scriptPath: string): string {
    return `SLURM_TIME_FORMAT=standard sbatch --test-only${this.clusters ? ` -M ${this.clusters}` : ''} ${shellQuote(scriptPath)}`;
  }

  /** "sbatch: Job 3983 to start at 2026-12-02T16:41:00 using 2 processors on nodes n3 in partition debug" (local time). */
  protected override parseExpectedStart(output: string): number | undefined {
    const m = /to start at (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})/.exec(output);
    if (!m) return undefined;
    const at = new Date(m[1]!).getTime();
    return Number.isFinite(at) ? at : undefined;
  }

  protected parseJobId(stdout: string): string | undefined {
    const id = parseSbatch(stdout);
    // `-M X` makes sbatch say "on cluster X"; if a wrapper dropped it, the id still names the cluster.
    return id !== undefined && this.clusters && !id.includes('.') ? `${id}.${this.clusters}` : id;
  }

  protected statusCommand(ids: string[]): string {
    return perCluster(ids, this.clusters, (jobs, m) => `squeue${m} --noheader --format='%i|%t|%r' --states=all --job=${jobs.join(',')}`);
  }

  protected parseStatus(stdout: string, stderr: string, code: number, ids: string[]): Map<string, BlockStatus> {
    // An id squeue no longer knows makes it exit 1 with this message; that is news (the job ended), not failure.
    const goneSaid = /Invalid job id specified/i.test(stderr);
    const complaints = ClusterProvider.lines(stderr).filter((l) => !/Invalid job id specified/i.test(l));
    if (code !== 0 && (!goneSaid || complaints.length > 0)) {
      return this.allUnknown(ids, stderr.trim() || `squeue exited with ${code}`);
    }
    const seen = new Map<string, BlockStatus>();
    let cluster: string | undefined;
    let rows = 0;
    for (const line of ClusterProvider.lines(stdout)) {
      const header = /^CLUSTER: (\S+)$/.exec(line);
      if (header) { cluster = header[1]; continue; }
      const [id, state, ...reason] = line.split('|');
      if (!id || !state || !/^\d+$/.test(id.trim())) {
        return this.allUnknown(ids, `squeue printed a line it was not asked for: ${JSON.stringify(line.slice(0, 120))}`);
      }
      rows++;
      const status = slurmStatus(state.trim(), reason.join('|'), (c) => this.mapState(c));
      seen.set(cluster ? `${id.trim()}.${cluster}` : id.trim(), status);
      if (cluster === this.clusters) seen.set(id.trim(), status);
    }
    // squeue with job ids exits 1 when it knows none of them; exit 0 with no row at all is a broken answer
    // (a wrapper, a format it did not take), not the news that every job ended.
    if (rows === 0 && !goneSaid) return this.allUnknown(ids, 'squeue printed no row for jobs it should know');
    return new Map(ids.map((id) => [id, seen.get(id) ?? this.gone(id)]));
  }

  protected override accountingCommand(ids: string[]): string {
    return perCluster(ids, this.clusters, (jobs, m) => `sacct${m} -X -n -P -o JobID,State,ExitCode -j ${jobs.join(',')}`);
  }

  protected override parseAccounting(stdout: string, ids: string[]): Map<string, BlockStatus> {
    const rows = parseSacct(stdout);
    const out = new Map<string, BlockStatus>();
    for (const id of ids) {
      const st = rows.get(splitSlurmId(id).job);
      if (st !== undefined) out.set(id, st);
    }
    return out;
  }

  protected cancelCommand(ids: string[]): string {
    return perCluster(ids, this.clusters, (jobs, m) => `scancel${m} ${jobs.join(' ')}`);
  }
}
