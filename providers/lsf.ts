/**
 * IBM Spectrum LSF: `bsub < SCRIPT` (so bsub reads the #BSUB lines) → `Job <1234> is submitted to queue
 * <normal>.`; `bjobs -noheader -o 'jobid stat' ID...`; `bkill ID...`.
 */
import type { BlockState, BlockStatus } from './provider.js';
import { ClusterProvider, type ClusterProviderOptions, type JobContext } from './cluster.js';
import { ConfigError } from '../src/errors.js';
import { checkOptionalName, shellQuote } from './script-values.js';
import { JsrunLauncher } from '../launchers/jsrun.js';

/** Options of the LSF provider. */
export interface LSFProviderOptions extends ClusterProviderOptions {
  /** `#BSUB -q`. @default the cluster's default queue */
  queue?: string;
  /** `#BSUB -P` (the project charged). @default none */
  project?: string;
  /**
   * Ask for whole nodes with `-nnodes N` (IBM CSM systems such as Summit); when false, ask for
   * `-n NODES*cores_per_node` slots spread `cores_per_node` per host (needs cores_per_node).
   * @default true
   */
  request_by_nodes?: boolean;
}

const LSF_STATES: Readonly<Record<string, BlockState>> = {
  PEND: 'pending', WAIT: 'pending', PROV: 'pending',
  RUN: 'running',
  DONE: 'completed',
  EXIT: 'failed',
  PSUSP: 'held', USUSP: 'held', SSUSP: 'held',
  // LSF itself does not know these jobs' state; not a code we failed to learn.
  ZOMBI: 'unknown', UNKWN: 'unknown',
};

/** LSF. */
export class LSFProvider extends ClusterProvider {
  protected readonly templateName = 'lsf.sh.hbs';
  protected readonly states = LSF_STATES;
  protected override readonly cancelGonePattern = /already finished|is not found|No matching job/i;
  readonly queue: string | undefined;
  readonly project: string | undefined;
  readonly requestByNodes: boolean;

  constructor(options: LSFProviderOptions = {}) {
    super(
      {
        kind: 'lsf',
        defaultLauncher: () => new JsrunLauncher(),
        extraOptions: ['queue', 'project', 'request_by_nodes'],
      },
      options,
    );
    this.queue = checkOptionalName('provider.queue', options.queue);
    this.project = checkOptionalName('provider.project', options.project);
    if (options.request_by_nodes !== undefined && typeof options.request_by_nodes !== 'boolean') {
      throw new ConfigError('provider.request_by_nodes: must be true or false');
    }
    this.requestByNodes = options.request_by_nodes ?? true;
    if (!this.requestByNodes && this.coresPerNode === undefined) {
      throw new ConfigError('provider.request_by_nodes is false, so provider.cores_per_node must be set', [
        'set cores_per_node to the cores of one host, or leave request_by_nodes at true',
      ]);
    }
  }

  protected contextExtras(base: JobContext): Record<string, unknown> {
    const cores = base.cores_per_node ?? 1;
    return {
      queue: this.queue,
      project: this.project,
      request_by_nodes: this.requestByNodes,
      slots: base.nodes * cores,
      ptile: cores,
    };
  }

  protected submitCommand(scriptPath: string): string {
    return `bsub < ${shellQuote(scriptPath)}`;
  }

  protected parseJobId(stdout: string): string | undefined {
    return /Job <(\d+)> is submitted/.exec(stdout)?.[1];
  }

  protected statusCommand(ids: string[]): string {
    return `bjobs -noheader -o 'jobid stat' ${ids.join(' ')}`;
  }

  protected parseStatus(stdout: string, stderr: string, code: number, ids: string[]): Map<string, BlockStatus> {
    // "Job <N> is not found" (exit 255) means the job left LSF's memory: it ended.
    const complaints = ClusterProvider.lines(stderr).filter((l) => !/is not found/.test(l));
    if (code !== 0 && complaints.length > 0) {
      return this.allUnknown(ids, stderr.trim());
    }
    if (code !== 0 && !/is not found/.test(stderr + stdout)) {
      return this.allUnknown(ids, `bjobs exited with ${code}`);
    }
    const seen = new Map<string, BlockStatus>();
    for (const line of ClusterProvider.lines(stdout)) {
      const cols = line.split(/\s+/);
      if (cols.length >= 2 && /^\d+$/.test(cols[0]!)) seen.set(cols[0]!, this.mapState(cols[1]!));
    }
    return new Map(ids.map((id) => [id, seen.get(id) ?? this.gone(id)]));
  }

  protected cancelCommand(ids: string[]): string {
    return `bkill ${ids.join(' ')}`;
  }
}
