/**
 * Torque: `qsub SCRIPT` → `1234.server`; `qstat ID...` prints a table (state in column 5); `qdel ID...`.
 * Completed jobs stay listed as C for a while (keep_completed), then vanish.
 */
import type { BlockState, BlockStatus } from './provider.js';
import { ClusterProvider, type ClusterProviderOptions, type JobContext } from './cluster.js';
import { checkOptionalName, shellQuote } from './script-values.js';
import { parsePbsJobId, shortJobId } from './pbspro.js';
import { MpiExecLauncher } from '../launchers/mpiexec.js';

/** Options of the Torque provider. */
export interface TorqueProviderOptions extends ClusterProviderOptions {
  /** `#PBS -q`. @default the server's default queue */
  queue?: string;
  /** `#PBS -A` (the account charged). @default none */
  account?: string;
}

const TORQUE_STATES: Readonly<Record<string, BlockState>> = {
  Q: 'pending', W: 'pending', T: 'pending',
  R: 'running', E: 'running',
  C: 'completed',
  H: 'held', S: 'held',
};

/** Torque (PBS) with its plain-table qstat. */
export class TorqueProvider extends ClusterProvider {
  protected readonly templateName = 'torque.sh.hbs';
  protected readonly states = TORQUE_STATES;
  protected override readonly cancelGonePattern = /Unknown Job Id|invalid state for job - COMPLETE/i;
  readonly queue: string | undefined;
  readonly account: string | undefined;

  constructor(options: TorqueProviderOptions = {}) {
    super(
      { kind: 'torque', defaultLauncher: () => new MpiExecLauncher(), extraOptions: ['queue', 'account'] },
      options,
    );
    this.queue = checkOptionalName('provider.queue', options.queue);
    this.account = checkOptionalName('provider.account', options.account);
  }

  protected contextExtras(base: JobContext): Record<string, unknown> {
    return {
      queue: this.queue,
      account: this.account,
      ppn: base.cores_per_node ?? 1,
      // Torque's mem is for the whole job.
      mem_total_mb: base.mem_mb === undefined ? undefined : base.mem_mb * base.nodes,
    };
  }

  protected submitCommand(scriptPath: string): string {
    return `qsub ${shellQuote(scriptPath)}`;
  }

  protected parseJobId(stdout: string): string | undefined {
    return parsePbsJobId(stdout);
  }

  protected statusCommand(ids: string[]): string {
    return `qstat ${ids.join(' ')}`;
  }

  protected parseStatus(stdout: string, stderr: string, code: number, ids: string[]): Map<string, BlockStatus> {
    // Unknown ids (purged jobs) make qstat exit non-zero; the known ones are still printed.
    if (code !== 0 && !/Unknown Job Id/i.test(stderr)) {
      return this.allUnknown(ids, stderr.trim() || `qstat exited with ${code}`);
    }
    const seen = new Map<string, BlockStatus>();
    for (const line of ClusterProvider.lines(stdout)) {
      const cols = line.split(/\s+/);
      // Rows start with the id (maybe cut short); the header and the dashed line do not start with a digit.
      if (cols.length < 6 || !/^\d/.test(cols[0]!)) continue;
      seen.set(shortJobId(cols[0]!), this.mapState(cols[4]!));
    }
    return new Map(ids.map((id) => [id, seen.get(shortJobId(id)) ?? this.gone(id)]));
  }

  protected cancelCommand(ids: string[]): string {
    return `qdel ${ids.join(' ')}`;
  }
}
