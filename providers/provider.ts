import type { Channel } from './channels/channel.js';
import type { Launcher } from '../launchers/launcher.js';

/** Where a block (a batch job) is in its life, in our words whatever the scheduler calls it. */
export type BlockState =
  | 'pending' | 'running' | 'held'
  | 'completed' | 'failed' | 'cancelled' | 'timeout' | 'node_fail' | 'out_of_memory'
  /** Left the queue, and the scheduler's accounting could not say how it ended. */
  | 'ended'
  | 'unknown';

/** Block states after which the job will never run again. */
export const TERMINAL_BLOCK_STATES: ReadonlySet<BlockState> = new Set([
  'completed', 'failed', 'cancelled', 'timeout', 'node_fail', 'out_of_memory', 'ended',
]);

export interface BlockStatus {
  state: BlockState;
  /** The scheduler's own code or words (e.g. "PD", "qw"), for logs and status. */
  raw?: string;
  /** Why, when the scheduler says (e.g. stderr of a failed status command, a reason field). */
  detail?: string;
  /**
   * The scheduler's own reason for a job that is not running (Slurm `%r` such as `Priority`, `Resources`,
   * `JobHeldAdmin`; a PBS `comment`; an LSF pending reason), shown in `status` next to the block.
   */
  reason?: string;
  /** The job waits for a reason that waiting cannot change (a partition limit, an invalid account, ...). */
  stuck?: boolean;
  /** Exit code of a finished job, when the scheduler's accounting says. */
  exitCode?: number;
}

/** What the endpoint asks a provider for: one block running `command` on every node. */
export interface BlockRequest {
  /** Our id for the block (e.g. "3"); goes into the job name. */
  blockId: string;
  /** The manager command line; the provider's launcher wraps it to run once per node. */
  command: string;
  /** Job name shown by the scheduler. */
  jobName: string;
  /** Environment variables the job must export before the command (no secrets: key material goes in files). */
  env?: Record<string, string>;
  /** Nodes of this block (the resolved config's nodes_per_block, or the strategy's choice within its bounds). */
  nodesPerBlock: number;
  /** Walltime of this block in seconds; undefined: none (only a provider without a scheduler, `local`, accepts that). */
  walltimeS?: number;
}

/** A submitted block. */
export interface SubmittedBlock {
  jobId: string;
  /** Path of the submit script on the channel's side (its output files sit beside it). */
  scriptPath: string;
  /** Path of the job's stdout file on the channel's side, when known. */
  stdoutPath?: string;
}

/**
 * Block-count limits shared by all providers (Parsl's names). The provider keeps them as given; defaults
 * (src/config/defaults.ts) and checks belong to the config layer (src/config/strategy-options.ts).
 */
export interface BlockLimits {
  /** Blocks submitted at start. @default 0 */
  init_blocks?: number;
  /** Blocks kept even when idle. @default 0 */
  min_blocks?: number;
  /** Hard cap on pending + running blocks. @default 1 */
  max_blocks?: number;
  /** Share of the backlog to cover with new workers (0..1). @default 1 */
  parallelism?: number;
}

/** The block fields of a provider, raw as the profile wrote them (resolved once by src/config/). */
export interface ProviderBlockOptions extends BlockLimits {
  /** Nodes in each block. @default 1 */
  nodes_per_block?: number;
  /** Walltime of a block: "HH:MM:SS" or seconds. @default "00:30:00" (local: none) */
  walltime?: string | number;
}

/** Pick the block fields out of a provider's options, as given. */
export function blockOptionsOf(options: ProviderBlockOptions): Readonly<ProviderBlockOptions> {
  const { init_blocks, min_blocks, max_blocks, parallelism, nodes_per_block, walltime } = options;
  const all = { init_blocks, min_blocks, max_blocks, parallelism, nodes_per_block, walltime };
  return Object.freeze(Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)) as ProviderBlockOptions);
}

/**
 * A provider knows one scheduler: how to render its submit script, submit it, ask status of many blocks in
 * one command, and cancel. It knows nothing of tasks or strategy.
 */
export interface ExecutionProvider {
  /** "local", "slurm", "pbspro", ... */
  readonly label: string;
  readonly channel: Channel;
  readonly launcher: Launcher;
  /** The block fields as the profile gave them (Parsl's names); the config layer resolves them. */
  readonly blockOptions: Readonly<ProviderBlockOptions>;
  /** The exact script that `submit` would submit, without submitting (dry run). */
  render(request: BlockRequest): Promise<string>;
  submit(request: BlockRequest): Promise<SubmittedBlock>;
  /**
   * Status of many blocks in one scheduler command. Ids the scheduler no longer knows come back as given by
   * the provider's rules ('ended', or what accounting says). A provider that paces its polls may answer from
   * its last poll and leave out ids it has no answer for yet (the caller keeps what it knew of them).
   */
  status(jobIds: string[]): Promise<Map<string, BlockStatus>>;
  cancel(jobIds: string[]): Promise<void>;
  /**
   * When the scheduler expects a block of `request` to start (epoch ms), asked without submitting (Slurm
   * `sbatch --test-only`); undefined when it cannot say. Optional; never throws.
   */
  expectedStart?(request: BlockRequest): Promise<number | undefined>;
  close(): Promise<void>;
}
