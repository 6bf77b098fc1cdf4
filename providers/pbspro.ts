/**
 * PBS Pro: `qsub SCRIPT` → `1234.pbs01`; `qstat -x -f -F json ID...` (with -x finished jobs stay listed with
 * state F and their Exit_status); `qdel ID...`.
 */
import type { BlockState, BlockStatus } from './provider.js';
import { ClusterProvider, type ClusterProviderOptions, type JobContext } from './cluster.js';
import { checkOptionalName, shellQuote } from './script-values.js';
import { MpiExecLauncher } from '../launchers/mpiexec.js';

/** Options of the PBS Pro provider. */
export interface PBSProProviderOptions extends ClusterProviderOptions {
  /** `#PBS -q`. @default the server's default queue */
  queue?: string;
  /** `#PBS -A` (the account / allocation charged). @default none */
  account?: string;
}

const PBS_STATES: Readonly<Record<string, BlockState>> = {
  Q: 'pending', W: 'pending', T: 'pending', M: 'pending',
  R: 'running', E: 'running', B: 'running',
  F: 'completed', X: 'completed',
  H: 'held', S: 'held', U: 'held',
};

/** PBS Pro Exit_status values that say why a finished job ended. */
const EXIT_WALLTIME = -29;
const EXIT_KILLED_BY_QDEL = 271; // 256 + SIGTERM

/** The short id ("1234" of "1234.pbs01"): qstat may key its JSON by either. */
export function shortJobId(id: string): string {
  return id.split('.')[0]!;
}

/** Read `qsub` output: the last line, "1234.server" or "1234[].server". */
export function parsePbsJobId(stdout: string): string | undefined {
  const last = stdout.split('\n').map((l) => l.trim()).filter(Boolean).at(-1);
  return last && /^\d+(\[\d*\])?(\.[A-Za-z0-9_.-]+)?$/.test(last) ? last : undefined;
}

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

  protected statusCommand(ids: string[]): string {
    return `qstat -x -f -F json ${ids.join(' ')}`;
  }

  protected parseStatus(stdout: string, stderr: string, code: number, ids: string[]): Map<string, BlockStatus> {
    // qstat exits non-zero when any id is unknown (e.g. history purged) yet still prints the others.
    if (code !== 0 && !/Unknown Job Id/i.test(stderr)) {
      return this.allUnknown(ids, stderr.trim() || `qstat exited with ${code}`);
    }
    const jobs = parseJobsJson(stdout);
    const byShort = new Map<string, PbsJob>();
    for (const [key, job] of Object.entries(jobs)) byShort.set(shortJobId(key), job);
    const out = new Map<string, BlockStatus>();
    for (const id of ids) {
      const job = jobs[id] ?? byShort.get(shortJobId(id));
      out.set(id, job ? this.jobStatus(job) : this.gone(id));
    }
    return out;
  }

  private jobStatus(job: PbsJob): BlockStatus {
    const raw = String(job.job_state ?? '');
    const status = this.mapState(raw);
    if (raw !== 'F' || job.Exit_status === undefined) return status;
    const exit = Number(job.Exit_status);
    const detail = `Exit_status ${exit}`;
    if (exit === 0) return { ...status, detail };
    if (exit === EXIT_WALLTIME) return { state: 'timeout', raw, detail };
    if (exit === EXIT_KILLED_BY_QDEL) return { state: 'cancelled', raw, detail };
    return { state: 'failed', raw, detail };
  }

  protected cancelCommand(ids: string[]): string {
    return `qdel ${ids.join(' ')}`;
  }
}

interface PbsJob {
  job_state?: string;
  Exit_status?: number | string;
}

/** The "Jobs" object of `qstat -F json`; empty output means no jobs. */
function parseJobsJson(stdout: string): Record<string, PbsJob> {
  if (stdout.trim() === '') return {};
  try {
    const doc = JSON.parse(stdout) as { Jobs?: Record<string, PbsJob> };
    return doc.Jobs ?? {};
  } catch {
    // Some PBS versions print invalid JSON (unescaped values in Variable_List); the fields we need are
    // simple, so read them by pattern rather than fail.
    // Job keys are the only keys that start with a digit; each job's fields follow its key.
    const jobs: Record<string, PbsJob> = {};
    const keys = [...stdout.matchAll(/"(\d+(?:\[\d*\])?(?:\.[^"]*)?)"\s*:\s*\{/g)];
    keys.forEach((m, i) => {
      const part = stdout.slice(m.index, keys[i + 1]?.index ?? stdout.length);
      const state = /"job_state"\s*:\s*"([A-Z])"/.exec(part)?.[1];
      const exit = /"Exit_status"\s*:\s*(-?\d+)/.exec(part)?.[1];
      if (state) jobs[m[1]!] = { job_state: state, ...(exit !== undefined ? { Exit_status: Number(exit) } : {}) };
    });
    if (Object.keys(jobs).length === 0) throw new Error('not JSON and no job_state found');
    return jobs;
  }
}
