/**
 * PBS Pro: `qsub SCRIPT` → `1234.pbs01`; `qstat -x -f -F json ID...` (with -x finished jobs stay listed with
 * state F and their Exit_status, so this is also the accounting), falling back to `qstat -x -f` text on
 * versions without JSON; `qdel ID...`. A waiting job's `comment` is its reason.
 */
import type { BlockState, BlockStatus } from './provider.js';
import { ClusterProvider, type ClusterProviderOptions, type JobContext } from './cluster.js';
import { checkOptionalName, shellQuote } from './script-values.js';
import { MpiExecLauncher } from '../launchers/mpiexec.js';
import { PBSPRO_EXITS, parseFullText, parseJobsJson, parsePbsJobId, pbsJobStatus, shortJobId, statusesOf } from './pbs-common.js';

/** Options of the PBS Pro provider. */
export interface PBSProProviderOptions extends ClusterProviderOptions {
  /** `#PBS -q`. @default the server's default queue */
  queue?: string;
  /** `#PBS -A` (the account / allocation charged). @default none */
  account?: string;
}

/** Every job state of the qstat(1B) manual. */
const PBS_STATES: Readonly<Record<string, BlockState>> = {
  Q: 'pending', W: 'pending', T: 'pending',
  R: 'running', E: 'running', B: 'running',
  F: 'completed', X: 'completed',
  H: 'held', S: 'held', U: 'held',
  // Moved to another server: this one no longer speaks for it.
  M: 'unknown',
};

export { shortJobId, parsePbsJobId };

/** PBS Pro and its JSON status. */
export class PBSProProvider extends ClusterProvider {
  protected readonly templateName = 'pbspro.sh.hbs';
  protected readonly states = PBS_STATES;
  protected override readonly cancelGonePattern = /Unknown Job Id|Job has finished/i;
  readonly queue: string | undefined;
  readonly account: string | undefined;

  constructor(options: PBSProProviderOptions = {}) {
    super(
      { kind: 'pbspro', defaultLauncher: () => new MpiExecLauncher(), extraOptions: ['queue', 'account'] },
      options,
    );
    this.queue = checkOptionalName('provider.queue', options.queue);
    this.account = checkOptionalName('provider.account', options.account);
  }

  protected contextExtras(base: JobContext): Record<string, unknown> {
    // One chunk per node, one MPI rank per node: the nodefile then lists each node once for mpiexec.
    let chunk = `${base.nodes}`;
    if (base.cores_per_node !== undefined) chunk += `:ncpus=${base.cores_per_node}`;
    chunk += `:mpiprocs=${base.tasks_per_node}`;
    if (base.mem_mb !== undefined) chunk += `:mem=${base.mem_mb}mb`;
    return {
      queue: this.queue,
      account: this.account,
      select: chunk,
      place: base.exclusive ? 'scatter:excl' : 'scatter',
    };
  }

  protected submitCommand(scriptPath: string): string {
    return `qsub ${shellQuote(scriptPath)}`;
  }

  protected parseJobId(stdout: string): string | undefined {
    return parsePbsJobId(stdout);
  }

  /** Set once qstat refuses `-F json` (PBS before 14): text from then on. */
  private textOnly = false;

  protected statusCommand(ids: string[]): string {
    return `qstat -x -f${this.textOnly ? '' : ' -F json'} ${ids.join(' ')}`;
  }

  protected parseStatus(stdout: string, stderr: string, code: number, ids: string[]): Map<string, BlockStatus> {
    if (code !== 0 && !this.textOnly && /invalid format|illegal option|invalid option|unrecognized option/i.test(stderr)) {
      this.textOnly = true;
      this.log('info', 'qstat has no -F json here: reading qstat -f text from now on');
      return this.allUnknown(ids, 'qstat has no -F json: asking for text next time');
    }
    // qstat exits non-zero when any id is unknown (e.g. history purged) yet still prints the others.
    const unknown = ClusterProvider.lines(stderr).filter((l) => /Unknown Job Id|Job has finished/i.test(l));
    const complaints = ClusterProvider.lines(stderr).filter((l) => !/Unknown Job Id|Job has finished/i.test(l));
    if (code !== 0 && (unknown.length === 0 || complaints.length > 0)) {
      return this.allUnknown(ids, stderr.trim() || `qstat exited with ${code}`);
    }
    const jobs = this.textOnly ? parseFullText(stdout) : parseJobsJson(stdout);
    return statusesOf(ids, jobs, unknown, (job) => pbsJobStatus(job, (c) => this.mapState(c), PBSPRO_EXITS), (id) => this.gone(id));
  }

  protected cancelCommand(ids: string[]): string {
    return `qdel ${ids.join(' ')}`;
  }
}

