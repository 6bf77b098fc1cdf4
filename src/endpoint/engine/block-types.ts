/** The types the block tracker (blocks.ts) keeps and shows, and its submission policy defaults. */
import type { BlockState, ExecutionProvider, BlockRequest } from '../../../providers/provider.js';
import type { BlockPhase } from './block-phase.js';

/** A block's state as we track it: the scheduler's, plus `submitting` before the job id is known. */
export type TrackedState = BlockState | 'submitting';

/** The shape of one block: nodes and walltime in seconds (Infinity when the scheduler has none). */
export interface BlockShape { nodes: number; walltimeS: number }

/** Time source in epoch milliseconds; injected so tests control it. */
export interface Clock { now(): number }

/** Where the tracker and strategy write what they do. */
export type LogFn = (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void;

/** One live block (not yet ended). Read-only outside the tracker. */
export interface TrackedBlock {
  /** Our id: "0", "1", ... in submission order. jobId: the scheduler's, null while submitting. */
  readonly blockId: string;
  jobId: string | null;
  state: TrackedState;
  /** The scheduler's own words for the state (raw), and why when it says (detail). */
  raw?: string;
  detail?: string;
  /** The scheduler's reason for a job not running (e.g. Priority, JobHeldAdmin), and whether waiting cannot change it. */
  reason?: string;
  stuck?: boolean;
  readonly submittedAt: number;
  /** When first seen running, or when a manager of it registered if that came first. */
  runningSince: number | null;
  /** runningSince + walltime (epoch ms); null until running; Infinity without walltime. */
  endsAt: number | null;
  readonly nodes: number;
  readonly walltimeS: number;
  /** Once any manager registered. */
  managerRegistered: boolean;
  /** What we do with it (see block-phase.ts); changed only through the tracker. */
  phase: BlockPhase;
  /** When it began draining: a drained block stays out of max_blocks through its cancel. */
  drainingSince: number | null;
  /** Why we cancelled it, when we did. */
  cancelReason?: string;
  stdoutPath?: string;
  /** Exit code of the finished job, when the scheduler's accounting says. */
  exitCode?: number;
}

/** A block that ended without any manager ever registering; tail: last lines of its output (may be empty). */
export interface MissingBlock { blockId: string; jobId: string | null; state: TrackedState; endedAt: number; tail: string[] }

/** Plain view of one block for `status`; walltimeLeftS is null while not running or without walltime. */
export interface BlockSnapshot {
  id: string;
  jobId: string | null;
  state: TrackedState;
  nodes: number;
  ageS: number;
  walltimeLeftS: number | null;
  phase: BlockPhase;
  detail?: string;
  /** The scheduler's reason it is not running; why we cancelled it. */
  reason?: string;
  cancelReason?: string;
}

/** How one block ended, for `status`. */
export interface EndedBlockView { id: string; jobId: string | null; state: TrackedState; exitCode?: number; detail?: string; cancelReason?: string }

/** Submission health for `status` and for the strategy's gate. */
export interface SubmitHealth {
  consecutiveSubmitFailures: number;
  lastSubmitError: string | null;
  /** Epoch ms before which no submission is tried (backoff); 0 when none. paused: stopped until `resume()`. */
  pausedUntil: number;
  paused: boolean;
  pausedReason: string | null;
  missingCount: number;
  consecutiveMissing: number;
  lastStatusError: string | null;
}

/** Backoff and pause rules; tests shrink them. */
export interface SubmitPolicy {
  /** First backoff delay. @default 2000 */
  baseMs: number;
  /** Growth per further failure. @default 2 */
  factor: number;
  /** Longest delay. @default 300000 */
  capMs: number;
  /** Failed submissions in a row that pause submitting. @default 10 */
  maxSubmitFailures: number;
  /** Blocks in a row that end before any manager registers that pause submitting. @default 3 */
  maxMissingBlocks: number;
  /** Lines of a missing block's output kept. @default 20 */
  tailLines: number;
}

/** The tracker's defaults, in one place. */
export const SUBMIT_POLICY_DEFAULTS: Readonly<SubmitPolicy> = {
  baseMs: 2000, factor: 2, capMs: 300_000, maxSubmitFailures: 10, maxMissingBlocks: 3, tailLines: 20,
};

export interface BlockTrackerOptions {
  provider: ExecutionProvider;
  /** Builds the request for a new block (the engine knows the manager command). */
  makeRequest: (blockId: string, shape: BlockShape) => BlockRequest;
  /** Hard cap on blocks in the scheduler (the resolved provider.max_blocks). */
  maxBlocks: number;
  clock?: Clock;
  policy?: Partial<SubmitPolicy>;
  log?: LogFn;
}

/** Whether a submission may happen now, and why not. */
export type SubmitGate = { ok: true } | { ok: false; reason: string };
