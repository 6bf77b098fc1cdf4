/**
 * The endpoint's blocks: submits them through a provider, polls all of them in one status call, and keeps
 * what the strategy and `status` need to know (state, end time, holds, missing blocks, submit failures).
 * It decides nothing: the strategy tells it what to submit, hold and cancel.
 */
import { SubmitError } from '../../errors.js';
import { type BlockRequest, type ExecutionProvider, TERMINAL_BLOCK_STATES } from '../../../providers/provider.js';
import { nextPhase, type BlockPhase } from './block-phase.js';
import { QueueWaitEstimator, type QueueWaitView, type WaitingBlock } from './block-wait.js';
import {
  SUBMIT_POLICY_DEFAULTS, type BlockShape, type BlockSnapshot, type BlockTrackerOptions, type Clock, type EndedBlockView,
  type LogFn, type MissingBlock, type SubmitGate, type SubmitHealth, type SubmitPolicy, type TrackedBlock, type TrackedState,
} from './block-types.js';

export type { BlockPhase } from './block-phase.js';
export * from './block-types.js';
export type { QueueWaitView } from './block-wait.js';

const HISTORY_LIMIT = 100;
/** How long the scheduler's word on when a new block of a shape would start is reused (ms). */
export const EXPECTED_START_TTL_MS = 30_000;
const shapeKey = (s: BlockShape): string => `${s.nodes}x${s.walltimeS}`;

/** What a failed scheduler command said: its stderr when there is one. */
function errorText(err: unknown): string {
  if (err instanceof SubmitError && err.stderr.trim() !== '') return err.stderr.trim();
  return err instanceof Error ? err.message : String(err);
}

export class BlockTracker {
  private readonly provider: ExecutionProvider;
  private readonly makeRequest: BlockTrackerOptions['makeRequest'];
  private readonly clock: Clock;
  private readonly policy: SubmitPolicy;
  private readonly log: LogFn;
  readonly maxBlocks: number;
  /** How long blocks wait in the queue, per shape (fed by every start seen). */
  readonly queueWaits = new QueueWaitEstimator();
  private nextId = 0;
  /** The scheduler's last word on when a new block of each shape would start, and when it was asked. */
  private readonly told = new Map<string, { at: number | undefined; askedAt: number }>();
  private readonly live = new Map<string, TrackedBlock>();
  private readonly ended: Array<TrackedBlock & { endedAt: number }> = [];
  private readonly missingBlocks: MissingBlock[] = [];
  /**
   * Told when the scheduler confirms a block ended: its managers cannot be alive any more (a scheduler that
   * kills with SIGKILL, like Grid Engine's qdel, leaves them no time to say bye).
   */
  onBlockEnded?: (blockId: string, state: TrackedState) => void;
  /** Blocks asked to cancel while their submission was still running. */
  private readonly cancelAfterSubmit = new Set<string>();
  /** The last reason a block could never start (for the pause on the second in a row). */
  private lastPermanentReason: string | null = null;
  private readonly health: SubmitHealth = {
    consecutiveSubmitFailures: 0, lastSubmitError: null, pausedUntil: 0, paused: false, pausedReason: null,
    missingCount: 0, consecutiveMissing: 0, lastStatusError: null,
  };

  constructor(options: BlockTrackerOptions) {
    this.provider = options.provider;
    this.makeRequest = options.makeRequest;
    this.clock = options.clock ?? { now: () => Date.now() };
    this.policy = { ...SUBMIT_POLICY_DEFAULTS, ...options.policy };
    this.log = options.log ?? (() => {});
    this.maxBlocks = options.maxBlocks;
  }

  /** Live blocks, oldest first. */
  blocks(): readonly Readonly<TrackedBlock>[] { return [...this.live.values()]; }

  get(blockId: string): Readonly<TrackedBlock> | undefined { return this.live.get(blockId); }

  /** Blocks that ended (newest last, bounded). */
  history(): readonly Readonly<TrackedBlock & { endedAt: number }>[] {
    return this.ended;
  }

  missing(): readonly MissingBlock[] { return this.missingBlocks; }

  submitHealth(): Readonly<SubmitHealth> { return { ...this.health }; }

  /**
   * Blocks that count against max_blocks: every live block except those draining. A draining block is
   * within walltime_margin of its end and takes no new task; letting its replacement start then is the
   * one place the scheduler may briefly see max_blocks + 1 jobs (see strategy.ts).
   */
  countedBlocks(): number {
    let n = 0;
    for (const b of this.live.values()) if (b.drainingSince === null) n++;
    return n;
  }

  /** Whether submissions are paused or backing off (max_blocks aside). */
  submitGate(): SubmitGate {
    const h = this.health;
    if (h.paused) return { ok: false, reason: `submissions paused: ${h.pausedReason ?? 'unknown reason'}` };
    const now = this.clock.now();
    if (h.pausedUntil <= now) return { ok: true };
    const s = Math.ceil((h.pausedUntil - now) / 1000);
    return { ok: false, reason: `backing off ${s} s after ${h.consecutiveSubmitFailures} failed submission(s)` };
  }

  /** Whether a submission may be tried now: the gate, and a free slot under max_blocks. */
  canSubmit(): SubmitGate {
    const gate = this.submitGate();
    if (!gate.ok) return gate;
    if (this.countedBlocks() >= this.maxBlocks) return { ok: false, reason: `at max_blocks (${this.maxBlocks})` };
    return gate;
  }

  /**
   * Submit one block. The block is recorded as `submitting` before the provider is called, so it already
   * counts against max_blocks while sbatch runs. Returns the block, or null when refused or failed (the
   * reason is in the log and in `submitHealth()`).
   */
  async submit(shape: BlockShape): Promise<Readonly<TrackedBlock> | null> {
    const gate = this.canSubmit();
    if (!gate.ok) return (this.log('debug', `block not submitted: ${gate.reason}`), null);
    const blockId = String(this.nextId++);
    this.told.delete(shapeKey(shape)); // this block takes what the scheduler had for the next one
    const block: TrackedBlock = {
      blockId, jobId: null, state: 'submitting', submittedAt: this.clock.now(), runningSince: null, endsAt: null,
      nodes: shape.nodes, walltimeS: shape.walltimeS, managerRegistered: false, phase: 'serving', drainingSince: null,
    };
    this.live.set(blockId, block);
    try {
      // The shape is ours to decide: make sure the request says the same, whatever the factory wrote.
      const request: BlockRequest = { ...this.makeRequest(blockId, shape), blockId, nodesPerBlock: shape.nodes, walltimeS: shape.walltimeS };
      if (!Number.isFinite(shape.walltimeS)) delete request.walltimeS; // no walltime: the provider's own default
      const submitted = await this.provider.submit(request);
      block.jobId = submitted.jobId;
      if (submitted.stdoutPath !== undefined) block.stdoutPath = submitted.stdoutPath;
      if (block.state === 'submitting') block.state = 'pending';
      this.health.consecutiveSubmitFailures = 0;
      this.health.pausedUntil = 0;
      this.log('info', `block ${blockId} submitted as job ${submitted.jobId} (${shape.nodes} node(s))`);
      if (this.cancelAfterSubmit.delete(blockId)) await this.cancelJobs([block]);
      return block;
    } catch (err) {
      this.live.delete(blockId);
      this.cancelAfterSubmit.delete(blockId);
      this.noteSubmitFailure(blockId, err);
      return null;
    }
  }

  private noteSubmitFailure(blockId: string, err: unknown): void {
    const h = this.health;
    h.consecutiveSubmitFailures++;
    const text = errorText(err);
    h.lastSubmitError = text;
    const p = this.policy;
    const delay = Math.min(p.capMs, p.baseMs * p.factor ** (h.consecutiveSubmitFailures - 1));
    h.pausedUntil = this.clock.now() + delay;
    this.log('error', `block ${blockId} submission failed (${h.consecutiveSubmitFailures} in a row), retry in ${Math.round(delay / 1000)} s: ${text}`);
    if (h.consecutiveSubmitFailures >= p.maxSubmitFailures) {
      this.pause(`${h.consecutiveSubmitFailures} submissions failed in a row; last error: ${text}`);
    }
  }

  private pause(reason: string): void {
    if (this.health.paused) return;
    Object.assign(this.health, { paused: true, pausedReason: reason });
    this.log('error', `submissions paused until resumed: ${reason}`);
  }

  /** Lift a pause and forget past failures (after the user fixed the profile or the cluster). */
  resume(): void {
    Object.assign(this.health, { paused: false, pausedReason: null, pausedUntil: 0, consecutiveSubmitFailures: 0, consecutiveMissing: 0 });
    this.lastPermanentReason = null;
    this.log('info', 'submissions resumed');
  }

  /**
   * Ask the scheduler about every live block in one call. When the call fails, every block keeps its last
   * known state (nothing is cancelled or resubmitted on a guess), and the error is kept for status.
   */
  async poll(): Promise<void> {
    const withJob = [...this.live.values()].filter((b) => b.jobId !== null);
    if (withJob.length === 0) return;
    let statuses;
    try {
      statuses = await this.provider.status(withJob.map((b) => b.jobId as string));
    } catch (err) {
      const text = errorText(err);
      if (this.health.lastStatusError !== text) this.log('warn', `block status failed, keeping last known states: ${text}`);
      this.health.lastStatusError = text;
      return;
    }
    // Nothing said about any block (the provider paces its polls and had no newer answer): keep every state.
    if (withJob.every((b) => !statuses.has(b.jobId as string))) return;
    const now = this.clock.now();
    const ended: TrackedBlock[] = [];
    // Providers report a failed status command as 'unknown' for every id (no code): show it like a failure.
    const all = withJob.map((b) => statuses.get(b.jobId as string));
    const blind = all.every((st) => st === undefined || (st.state === 'unknown' && st.raw === undefined));
    this.health.lastStatusError = blind ? (all.find((st) => st?.detail)?.detail ?? 'no status for any block') : null;
    for (const block of withJob) {
      const st = statuses.get(block.jobId as string);
      if (st === undefined) continue;
      const state: TrackedState = st.state;
      if (state === 'unknown') {
        // Says nothing about the job (a failed command, a code we do not know): keep what we knew.
        if (block.raw !== st.raw || block.detail !== st.detail) {
          this.log('warn', `block ${block.blockId} (job ${block.jobId}): state unknown (${st.raw ?? ''} ${st.detail ?? ''}), keeping ${block.state}`);
        }
        block.raw = st.raw;
        block.detail = st.detail;
        continue;
      }
      if (st.reason !== block.reason && st.reason !== undefined) {
        this.log(st.stuck || state === 'held' ? 'warn' : 'info', `block ${block.blockId} (job ${block.jobId}): ${state}: ${st.reason}${st.stuck ? ' (waiting cannot change it)' : ''}`);
      }
      if (st.reason === undefined) delete block.reason;
      else block.reason = st.reason;
      if (st.stuck) block.stuck = true;
      else delete block.stuck;
      if (state !== block.state) this.log('info', `block ${block.blockId} (job ${block.jobId}): ${block.state} -> ${state}`);
      block.state = state;
      block.raw = st.raw;
      block.detail = st.detail;
      if (st.exitCode !== undefined) block.exitCode = st.exitCode;
      if (state === 'running' && block.runningSince === null) this.markRunning(block, now);
      if (TERMINAL_BLOCK_STATES.has(st.state)) ended.push(block);
    }
    for (const block of ended) await this.retire(block, now);
  }

  private markRunning(block: TrackedBlock, at: number): void {
    block.runningSince = at;
    this.queueWaits.observe(block, at - block.submittedAt);
    block.endsAt = Number.isFinite(block.walltimeS) ? at + block.walltimeS * 1000 : Infinity;
  }

  /** Move an ended block to history; a block no manager ever came from is `missing`. */
  private async retire(block: TrackedBlock, now: number): Promise<void> {
    this.live.delete(block.blockId);
    this.ended.push({ ...block, endedAt: now });
    this.onBlockEnded?.(block.blockId, block.state);
    if (this.ended.length > HISTORY_LIMIT) this.ended.shift();
    const ended = block.exitCode === undefined ? block.state : `${block.state}, exit code ${block.exitCode}`;
    if (block.state !== 'completed' || block.detail) this.log(block.state === 'completed' || block.state === 'cancelled' ? 'info' : 'warn', `block ${block.blockId} (job ${block.jobId}) ended: ${ended}${block.detail ? ` (${block.detail})` : ''}`);
    if (block.managerRegistered || block.phase === 'cancelling') return;
    const tail = await this.readTail(block.stdoutPath);
    this.missingBlocks.push({ blockId: block.blockId, jobId: block.jobId, state: block.state, endedAt: now, tail });
    if (this.missingBlocks.length > HISTORY_LIMIT) this.missingBlocks.shift();
    const h = this.health;
    h.missingCount++;
    h.consecutiveMissing++;
    const out = tail.length > 0 ? `; last output:\n${tail.join('\n')}` : '; no output found';
    this.log('error', `block ${block.blockId} (job ${block.jobId}) ended ${block.state} before any manager registered (missing)${out}`);
    if (h.consecutiveMissing >= this.policy.maxMissingBlocks) {
      this.pause(
        `${h.consecutiveMissing} blocks in a row ended before any manager registered (check worker_init and the ` +
          `block output); last: ${tail.at(-1) ?? 'no output'}`,
      );
    }
  }

  private async readTail(path: string | undefined): Promise<string[]> {
    if (path === undefined) return [];
    try {
      const text = (await this.provider.channel.readFile(path)).toString('utf8');
      const lines = text.split('\n');
      if (lines.at(-1) === '') lines.pop();
      return lines.slice(-this.policy.tailLines);
    } catch {
      return []; // the file may never have been written (the job died before starting)
    }
  }

  /**
   * A manager of this block registered (called by the engine). Proves the block runs: its end time counts
   * from now if the scheduler was not yet seen saying running, and it is no longer a missing candidate.
   */
  noteManagerRegistered(blockId: string): void {
    const block = this.live.get(blockId);
    if (block === undefined) return;
    block.managerRegistered = true;
    this.health.consecutiveMissing = 0;
    this.lastPermanentReason = null;
    if (block.runningSince === null) this.markRunning(block, this.clock.now());
    if (block.state === 'pending' || block.state === 'submitting' || block.state === 'unknown') block.state = 'running';
  }

  /** Blocks still waiting in the queue (not cancelled): what the queue-wait estimate counts in. */
  private waiting(): WaitingBlock[] {
    return [...this.live.values()].filter((b) => b.jobId !== null && b.runningSince === null && b.phase !== 'cancelling' && b.state === 'pending');
  }

  /** Expected queue wait of a new block of `shape` (ms), or undefined when nothing is known yet. */
  queueWaitMs(shape: BlockShape): number | undefined {
    return this.queueWaits.estimate(shape, this.clock.now(), this.waiting());
  }

  /**
   * When the scheduler expects a new block of `shape` to start (epoch ms), asked without submitting (Slurm
   * `sbatch --test-only`) at most every EXPECTED_START_TTL_MS per shape and again after each submission of
   * that shape; undefined when the provider cannot say.
   */
  async expectedStart(shape: BlockShape): Promise<number | undefined> {
    if (this.provider.expectedStart === undefined) return undefined;
    const key = shapeKey(shape);
    const now = this.clock.now();
    const last = this.told.get(key);
    if (last !== undefined && now - last.askedAt < EXPECTED_START_TTL_MS) return last.at;
    const request: BlockRequest = { ...this.makeRequest('probe', shape), blockId: 'probe', nodesPerBlock: shape.nodes, walltimeS: shape.walltimeS };
    if (!Number.isFinite(shape.walltimeS)) delete request.walltimeS;
    const at = await this.provider.expectedStart(request).catch(() => undefined);
    this.told.set(key, { at, askedAt: now });
    return at;
  }

  /** The queue-wait estimate of every shape seen, for `status`. */
  queueWaitSnapshot(): QueueWaitView[] {
    return this.queueWaits.snapshot(this.clock.now(), this.waiting());
  }

  /** Phases set by the strategy (it also tells the engine). */
  hold(blockId: string): void { this.setPhase(blockId, 'held'); }

  release(blockId: string): void { this.setPhase(blockId, 'serving'); }

  markDraining(blockId: string): void {
    const block = this.setPhase(blockId, 'draining');
    if (block !== undefined && block.drainingSince === null) block.drainingSince = this.clock.now();
  }

  private setPhase(blockId: string, phase: BlockPhase): TrackedBlock | undefined {
    const block = this.live.get(blockId);
    if (block !== undefined) block.phase = nextPhase(blockId, block.phase, phase);
    return block;
  }

  /**
   * A block cancelled because it cannot start (held, stuck, pending too long): two blocks in a row pending
   * for reasons that waiting cannot change pause submission with the scheduler's reasons, like repeated failed
   * starts. The reasons need not be the same: Slurm names one request PartitionNodeLimit at one poll and
   * PartitionConfig at the next.
   */
  noteStuck(blockId: string, why: string, permanent: string | null): void {
    const block = this.live.get(blockId);
    if (block === undefined || block.cancelReason !== undefined) return; // a cancel asked again: already noted
    block.cancelReason = why;
    if (permanent === null) return;
    if (this.lastPermanentReason !== null) {
      const reasons = this.lastPermanentReason === permanent ? permanent : `${this.lastPermanentReason}, then ${permanent}`;
      this.pause(`2 blocks in a row could not start: ${reasons} (fix the profile or ask the site, then resume)`);
    }
    this.lastPermanentReason = permanent;
  }

  /**
   * Cancel blocks in one scheduler call. A block still submitting is cancelled as soon as its job id is
   * known. The state changes only when status confirms it (some schedulers accept unknown ids silently).
   * On failure the blocks stay as they were, so the strategy asks again on its next tick.
   */
  async cancel(blockIds: string[]): Promise<void> {
    const blocks = blockIds.map((id) => this.live.get(id)).filter((b): b is TrackedBlock => b !== undefined && b.phase !== 'cancelling');
    for (const b of blocks) if (b.jobId === null) this.cancelAfterSubmit.add(b.blockId);
    await this.cancelJobs(blocks.filter((b) => b.jobId !== null));
  }

  private async cancelJobs(blocks: TrackedBlock[]): Promise<void> {
    if (blocks.length === 0) return;
    try {
      await this.provider.cancel(blocks.map((b) => b.jobId as string));
      for (const b of blocks) b.phase = nextPhase(b.blockId, b.phase, 'cancelling');
      this.log('info', `cancelled block(s) ${blocks.map((b) => `${b.blockId} (job ${b.jobId})`).join(', ')}`);
    } catch (err) {
      this.log('error', `cancel of block(s) ${blocks.map((b) => b.blockId).join(', ')} failed: ${(err as Error)?.message ?? err}`);
    }
  }

  /** The last ended blocks for `status`, newest last. */
  endedSnapshot(limit = 10): EndedBlockView[] {
    return this.ended.slice(-limit).map((b) => ({
      id: b.blockId, jobId: b.jobId, state: b.state,
      ...(b.exitCode === undefined ? {} : { exitCode: b.exitCode }),
      ...(b.detail === undefined ? {} : { detail: b.detail }),
      ...(b.cancelReason === undefined ? {} : { cancelReason: b.cancelReason }),
    }));
  }

  /** Plain objects for `status` (managers and workers are added by the engine). */
  snapshot(): BlockSnapshot[] {
    const now = this.clock.now();
    const s = (ms: number): number => Math.max(0, Math.round(ms / 1000));
    return [...this.live.values()].map((b) => ({
      id: b.blockId, jobId: b.jobId, state: b.state, nodes: b.nodes, ageS: s(now - b.submittedAt),
      walltimeLeftS: b.endsAt === null || !Number.isFinite(b.endsAt) ? null : s(b.endsAt - now),
      phase: b.phase, ...(b.detail === undefined ? {} : { detail: b.detail }),
      ...(b.reason === undefined ? {} : { reason: b.reason }), ...(b.cancelReason === undefined ? {} : { cancelReason: b.cancelReason }),
    }));
  }
}
