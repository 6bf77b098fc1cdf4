/**
 * Torque: `qsub SCRIPT` → `1234.server`; `qstat -f ID...` prints each job's attributes (job_state, comment,
 * exit_status); `qdel ID...`. Completed jobs stay listed as C with their exit_status for a while
 * (keep_completed), then vanish: Torque keeps no accounting a user can query, so those end as 'ended'.
 */
import type { BlockState, BlockStatus } from './provider.js';
import { ClusterProvider, type ClusterProviderOptions, type JobContext } from './cluster.js';
import { checkOptionalName, shellQuote } from './script-values.js';
import { TORQUE_EXITS, parseFullText, parsePbsJobId, pbsJobStatus, statusesOf } from './pbs-common.js';
import { MpiExecLauncher } from '../launchers/mpiexec.js';

/** Options of the Torque provider. */
export interface TorqueProviderOptions extends ClusterProviderOptions {
  /** `#PBS -q`. @default the server's default queue */
  queue?: string;
  /** `#PBS -A` (the account charged). @default none */
  account?: string;
}

/** Every job state of Torque's qstat manual. */
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
    return `qstat -f ${ids.join(' ')}`;
  }

  protected parseStatus(stdout: string, stderr: string, code: number, ids: string[]): Map<string, BlockStatus> {
    // Unknown ids (purged jobs) make qstat exit non-zero; the known ones are still printed.
    const unknown = ClusterProvider.lines(stderr).filter((l) => /Unknown Job Id/i.test(l));
    const complaints = ClusterProvider.lines(stderr).filter((l) => !/Unknown Job Id/i.test(l));
    if (code !== 0 && (unknown.length === 0 || complaints.length > 0)) {
      return this.allUnknown(ids, stderr.trim() || `qstat exited with ${code}`);
    }
    const jobs = parseFullText(stdout);
    return statusesOf(ids, jobs, unknown, (job) => pbsJobStatus(job, (c) => this.mapState(c), TORQUE_EXITS), (id) => this.gone(id));
  }

  protected cancelCommand(ids: string[]): string {
    return `qdel ${ids.join(' ')}`;
  }
}
