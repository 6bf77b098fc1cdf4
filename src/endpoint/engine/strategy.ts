/**
 * The elastic strategy: every `period` it reads the backlog, the managers' load and the blocks, and decides
 * what to submit, hold, release, drain and cancel. `decide()` is pure (tested with plain objects); the
 * `Strategy` class runs it on a timer and applies it to the BlockTracker and the engine.
 *
 * Walltime and max_blocks (a choice): a replacement for a block that is about to expire counts against
 * max_blocks like any block. Below max_blocks it is submitted as soon as the old block has less than
 * walltime_margin + one period left; at max_blocks it is submitted on the tick that drains the old block
 * (less than walltime_margin left), because a draining block takes no new task and no longer counts. The
 * scheduler may then see max_blocks + 1 jobs for at most walltime_margin, the old one finishing its last
 * tasks; in exchange the work never waits for a whole block's queue time.
 */
import type { ResolvedStrategyOptions } from '../../config/strategy-options.js';
import { DEFAULT_ESTIMATE_MS } from '../../config/defaults.js';
import type { BlockShape, BlockTracker, Clock, LogFn, SubmitGate, TrackedBlock } from './blocks.js';
import { stuckBlock, type StuckBlock } from './stuck-blocks.js';
import { planShapes } from './plan-shapes.js';
import { drainMs, type Arrival } from './block-wait.js';

export { stuckBlock, type StuckBlock } from './stuck-blocks.js';

/** Load of one block's managers, as the engine sees it. */
export interface BlockLoad {
  /** Registered, live managers of this block. */
  managers: number;
  /** Their total workers. */
  workers: number;
  /** Tasks in flight on them (capped at workers). */
  busyWorkers: number;
  /** Epoch ms since when the block had no task in flight; null while busy. */
  idleSinceMs: number | null;
}

/** What the strategy needs from the engine (the interchange implements it). */
export interface EngineView {
  /** Tasks queued and not yet dispatched. */
  backlog(): number;
  /** Load by blockId. */
  loadByBlock(): Map<string, BlockLoad>;
  /** Dispatch no new task to the block (so scale-in never races dispatch). */
  holdBlock(blockId: string): void;
  /** Undo a hold (work came back before the cancel). */
  releaseBlock(blockId: string): void;
  /** Managers finish their in-flight tasks, say bye and exit. */
  drainBlock(blockId: string): void;
}

// Options are resolved once by the config layer (src/config/strategy-options.ts); re-exported for callers.
export type { Bounds, ResolvedStrategyOptions, StrategyOptions } from '../../config/strategy-options.js';
export { DEFAULT_ESTIMATE_MS } from '../../config/defaults.js';

/** One decision, kept as `lastDecision` for status. */
export interface Decision {
  at: number;
  submit: BlockShape[];
  hold: string[]; release: string[]; cancel: string[]; drain: string[];
  /** Blocks cancelled because they cannot start, why, and the scheduler's reason when waiting cannot change it. */
  stuck: StuckBlock[];
  /** What was decided and why, in words. */
  reason: string;
}

export interface StrategyInput {
  now: number;
  options: ResolvedStrategyOptions;
  /** Live blocks (not ended). */
  blocks: readonly Readonly<TrackedBlock>[];
  load: ReadonlyMap<string, BlockLoad>;
  backlog: number;
  /** True on the strategy's first tick (init_blocks). */
  firstTick: boolean;
  /** Backoff or pause of submissions (max_blocks is checked here, not by the gate). */
  gate: SubmitGate;
  /** Expected task duration. @default 1000 */
  estimateMs?: number;
  /** Expected queue wait of a new block of `shape` (ms), undefined when unknown (see block-wait.ts). */
  queueWaitMs?: (shape: BlockShape) => number | undefined;
}

const NO_LOAD: BlockLoad = { managers: 0, workers: 0, busyWorkers: 0, idleSinceMs: null };
const secs = (ms: number): string => `${Math.round(ms / 1000)} s`;
const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/** Decide what to do now. Pure: the same input gives the same decision. */
export function decide(input: StrategyInput): Decision {
  const { now, options: o, backlog } = input;
  const d: Decision = { at: now, submit: [], hold: [], release: [], cancel: [], drain: [], stuck: [], reason: '' };
  const cancelling = (b: Readonly<TrackedBlock>): boolean => b.phase === 'cancelling';
  const drained = (b: Readonly<TrackedBlock>): boolean => b.drainingSince !== null;
  const why: string[] = [];
  const load = (b: Readonly<TrackedBlock>): BlockLoad => input.load.get(b.blockId) ?? NO_LOAD;
  const left = (b: Readonly<TrackedBlock>): number => (b.endsAt === null ? Infinity : b.endsAt - now);
  const expiring = (b: Readonly<TrackedBlock>): boolean => left(b) < o.walltimeMarginMs + o.periodMs;

  // 1. Walltime: managers of a block about to end drain now, while they can still finish cleanly.
  for (const b of input.blocks) {
    if (!drained(b) && !cancelling(b) && left(b) < o.walltimeMarginMs) d.drain.push(b.blockId);
  }
  if (d.drain.length > 0) why.push(`drain ${d.drain.join(', ')}: walltime left < walltime_margin ${secs(o.walltimeMarginMs)}`);
  // A drained block whose managers have all left holds an allocation for nothing.
  for (const b of input.blocks) {
    if (b.phase === 'draining' && b.managerRegistered && load(b).managers === 0) d.cancel.push(b.blockId);
  }
  // Stuck blocks are not capacity: cancelled now (and replaced below when the work needs it).
  for (const b of input.blocks) {
    const stuck = stuckBlock(b, now, o.maxPendingMs);
    if (stuck === null) continue;
    d.stuck.push(stuck);
    d.cancel.push(b.blockId);
  }
  if (d.stuck.length > 0) why.push(d.stuck.map((s) => `cancel ${s.blockId}: ${s.why}`).join('; '));
  const stuckIds = new Set(d.stuck.map((s) => s.blockId));

  const drainNow = new Set(d.drain);
  const staying = input.blocks.filter((b) => !drained(b) && !drainNow.has(b.blockId));
  const usable = staying.filter((b) => !cancelling(b) && !stuckIds.has(b.blockId));
  const busy = usable.reduce((n, b) => n + Math.min(load(b).busyWorkers, load(b).workers), 0);
  const demand = backlog + busy;
  const neededWorkers = demand > 0 ? Math.max(1, Math.ceil(o.parallelism * demand)) : 0;

  // 2. Scale in, block by block: hold on one tick, cancel on a later one if nothing came back.
  let keep = usable.filter((b) => !expiring(b)).length; // blocks still here after the next period
  const leaving = new Set<string>();
  for (const b of usable.filter((x) => x.phase === 'held')) {
    if (backlog > 0 || load(b).busyWorkers > 0) d.release.push(b.blockId);
    else if (expiring(b) || keep - 1 >= o.minBlocks) {
      d.cancel.push(b.blockId);
      leaving.add(b.blockId);
      if (!expiring(b)) keep--;
    } else d.release.push(b.blockId); // another block ended meanwhile: this one is needed for min_blocks
  }
  if (backlog === 0) {
    const idle = usable
      .filter((b) => {
        const l = load(b);
        return b.phase !== 'held' && l.managers > 0 && l.busyWorkers === 0 && l.idleSinceMs !== null && now - l.idleSinceMs >= o.maxIdleMs;
      })
      // The block with the least walltime left goes first: the others can serve longer.
      .sort((a, b) => left(a) - left(b) || a.submittedAt - b.submittedAt);
    for (const b of idle) {
      if (!expiring(b) && keep - 1 < o.minBlocks) continue;
      d.hold.push(b.blockId);
      leaving.add(b.blockId);
      if (!expiring(b)) keep--;
    }
  }
  if (d.hold.length > 0) why.push(`hold ${d.hold.join(', ')}: idle >= max_idletime ${secs(o.maxIdleMs)} and no backlog`);
  const cancelIdle = d.cancel.filter((id) => leaving.has(id));
  if (cancelIdle.length > 0) why.push(`cancel ${cancelIdle.join(', ')}: still idle since held`);
  if (d.release.length > 0) why.push(`release ${d.release.join(', ')}: work came back`);

  // 3. Scale out. Submitting and pending blocks are coming capacity; expiring ones are not.
  const capacity = usable.filter((b) => !expiring(b) && !leaving.has(b.blockId));
  const capacityWorkers = capacity.reduce((n, b) => n + b.nodes * o.workersPerNode, 0);
  const counted = staying.length; // cancelled blocks count until the scheduler confirms they are gone
  const freeSlots = o.maxBlocks - counted;
  let minNew = Math.max(0, o.minBlocks - keep);
  if (input.firstTick) minNew = Math.max(minNew, o.initBlocks - counted);
  const missingWorkers = Math.max(0, neededWorkers - capacityWorkers);
  const load_ = `backlog ${backlog} + busy ${busy} needs ${neededWorkers} worker(s) (parallelism ${o.parallelism}), ${capacityWorkers} available or coming`;
  if (missingWorkers > 0 || minNew > 0) {
    const wanted = missingWorkers > 0 ? load_ : `${minNew} block(s) for ${input.firstTick && o.initBlocks > 0 ? 'init_blocks/' : ''}min_blocks`;
    if (!input.gate.ok) why.push(`${wanted}; not submitting: ${input.gate.reason}`);
    else if (freeSlots <= 0) why.push(`${wanted}; not submitting: at max_blocks ${o.maxBlocks}`);
    else {
      const plan = planShapes(o, { missingWorkers, minNew, freeSlots, demand, capacityWorkers, estimateMs: input.estimateMs });
      const late = input.queueWaitMs ? lateShapes(input, plan.shapes, minNew, demand, capacity, load) : { keep: plan.shapes, why: '', check: undefined };
      d.submit = late.keep;
      if (late.check) queueChecks.set(d, late.check);
      why.push(`${wanted}; ${plan.why}${late.why}`);
    }
  }
  if (why.length === 0) why.push(`${load_}: nothing to do`);
  d.reason = why.join('; ');
  return d;
}

/**
 * Queue wait counts: a block that by the queue-wait estimate would start after the workers running or coming
 * have drained the backlog is not submitted (it would hold nodes for nothing). Blocks needed for
 * min_blocks/init_blocks are always kept, and so is a shape nothing is known of.
 */
function lateShapes(
  input: StrategyInput, shapes: BlockShape[], minNew: number, tasks: number,
  capacity: readonly Readonly<TrackedBlock>[], load: (b: Readonly<TrackedBlock>) => BlockLoad,
): { keep: BlockShape[]; why: string; check: QueueCheck } {
  const { now, options: o } = input;
  const waitOf = input.queueWaitMs!;
  const taskMs = input.estimateMs ?? DEFAULT_ESTIMATE_MS;
  let workersNow = 0;
  const arrivals: Arrival[] = [];
  for (const b of capacity) {
    const started = b.runningSince !== null || b.managerRegistered || load(b).managers > 0;
    const workers = started && load(b).workers > 0 ? load(b).workers : b.nodes * o.workersPerNode;
    if (started) workersNow += workers;
    else {
      const wait = b.state === 'pending' || b.state === 'submitting' ? waitOf(b) : undefined;
      arrivals.push({ atMs: wait === undefined ? Infinity : Math.max(0, b.submittedAt + wait - now), workers });
    }
  }
  const keep: BlockShape[] = [];
  const skipped: string[] = [];
  const base = { tasks, taskMs, workersNow, arrivals: [...arrivals], forced: minNew, workersPerNode: o.workersPerNode };
  shapes.forEach((shape, i) => {
    const wait = waitOf(shape);
    const drain = drainMs(tasks, taskMs, workersNow, arrivals);
    if (i >= minNew && wait !== undefined && wait > drain) {
      skipped.push(`${shape.nodes} node(s): queue wait ~${secs(wait)} by estimate, the backlog is drained in ~${secs(drain)} by the workers running or coming`);
      return;
    }
    keep.push(shape);
    arrivals.push({ atMs: wait ?? Infinity, workers: shape.nodes * o.workersPerNode });
  });
  return { keep, why: skipped.length === 0 ? '' : `; not submitting ${skipped.length} of them (${skipped.join('; ')})`, check: base };
}

/** What apply() needs to ask the scheduler itself before each submission (see Strategy.submitAll). */
interface QueueCheck { tasks: number; taskMs: number; workersNow: number; arrivals: Arrival[]; forced: number; workersPerNode: number }
const queueChecks = new WeakMap<Decision, QueueCheck>();

/** Timer functions, injectable for tests. */
export interface Timers { setInterval(fn: () => void, ms: number): unknown; clearInterval(handle: unknown): void }

export interface StrategyDeps {
  tracker: BlockTracker;
  engine: EngineView;
  options: ResolvedStrategyOptions;
  clock?: Clock;
  timers?: Timers;
  /** Expected task duration from past runs (e.g. a moving average); undefined when unknown. */
  estimateMs?: () => number | undefined;
  log?: LogFn;
}

/** Runs `decide` every period and applies its decisions. */
export class Strategy {
  /** The last decision, for status. */
  lastDecision: Decision | null = null;
  private readonly deps: StrategyDeps;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly log: LogFn;
  private handle: unknown = null;
  private ticking = false;
  /** The tick under way (a block submission may be in it), for idle(). */
  private current: Promise<Decision | null> | null = null;
  private ticks = 0;
  private lastTickAt = -Infinity;
  private nudgeTimer: NodeJS.Timeout | null = null;

  constructor(deps: StrategyDeps) {
    this.deps = deps;
    this.clock = deps.clock ?? { now: () => Date.now() };
    this.timers = deps.timers ?? {
      setInterval: (fn, ms) => setInterval(fn, ms),
      clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
    };
    this.log = deps.log ?? (() => {});
  }

  /** Start ticking every period, with a first tick right away (init_blocks). Calling it again does nothing. */
  start(): void {
    if (this.handle !== null) return;
    this.handle = this.timers.setInterval(() => void this.tick(), this.deps.options.periodMs);
    // The strategy alone must not keep the process alive.
    (this.handle as { unref?: () => void }).unref?.();
    void this.tick();
  }

  stop(): void {
    if (this.handle === null) return;
    this.timers.clearInterval(this.handle);
    this.handle = null;
    if (this.nudgeTimer !== null) clearTimeout(this.nudgeTimer);
    this.nudgeTimer = null;
  }

  /** Tick now unless one ran in the last quarter second (the engine calls it when work arrives). */
  nudge(): void {
    if (this.handle === null || this.nudgeTimer !== null) return;
    const wait = 250 - (this.clock.now() - this.lastTickAt);
    if (wait <= 0) {
      void this.tick();
      return;
    }
    // Too soon after the last tick: tick once when the quarter second is up (work arrived just after a tick).
    this.nudgeTimer = setTimeout(() => {
      this.nudgeTimer = null;
      if (this.handle !== null) void this.tick();
    }, wait);
    this.nudgeTimer.unref?.();
  }

  /** Resolves once no tick is under way: after stop(), nothing more will be submitted. */
  async idle(): Promise<void> {
    while (this.current) await this.current;
  }

  /** One round: poll the blocks, decide, apply. Never throws; returns null when a tick is already running. */
  async tick(): Promise<Decision | null> {
    if (this.ticking) return null;
    this.current = this.runTick();
    try {
      return await this.current;
    } finally {
      this.current = null;
    }
  }

  private async runTick(): Promise<Decision | null> {
    this.ticking = true;
    this.lastTickAt = this.clock.now();
    try {
      const { tracker, engine, options } = this.deps;
      await tracker.poll();
      const decision = decide({
        now: this.clock.now(),
        options,
        blocks: tracker.blocks(),
        load: engine.loadByBlock(),
        backlog: engine.backlog(),
        firstTick: this.ticks === 0,
        gate: tracker.submitGate(),
        estimateMs: this.deps.estimateMs?.(),
        queueWaitMs: (shape) => tracker.queueWaitMs(shape),
      });
      this.ticks++;
      await this.apply(decision);
      if (decision.reason !== this.lastDecision?.reason) this.log('info', `strategy: ${decision.reason}`);
      this.lastDecision = decision;
      return decision;
    } catch (err) {
      this.log('error', `strategy tick failed: ${(err as Error)?.stack ?? err}`);
      return null;
    } finally {
      this.ticking = false;
    }
  }

  private async apply(d: Decision): Promise<void> {
    const { tracker, engine } = this.deps;
    for (const id of d.release) { tracker.release(id); engine.releaseBlock(id); }
    for (const id of d.hold) { tracker.hold(id); engine.holdBlock(id); }
    for (const id of d.drain) { tracker.markDraining(id); engine.drainBlock(id); }
    for (const s of d.stuck) {
      this.log('warn', `block ${s.blockId} is not capacity: ${s.why}; cancelling it`);
      tracker.noteStuck(s.blockId, s.why, s.permanent);
    }
    if (d.cancel.length > 0) {
      await tracker.cancel(d.cancel);
      // Confirm the cancel by status soon rather than a whole period later (once this tick is over).
      setTimeout(() => this.nudge(), 0).unref?.();
    }
    await this.submitAll(d);
  }

  /**
   * Submit the decided blocks one at a time (a failure starts the backoff, and the rest wait for it). Where
   * the scheduler can say when a block would start (Slurm `sbatch --test-only`), a block it expects to start
   * after the workers running or coming have drained the backlog is not submitted: the scheduler knows its
   * queue better than our moving estimate does.
   */
  private async submitAll(d: Decision): Promise<void> {
    const { tracker } = this.deps;
    const check = queueChecks.get(d);
    const submitted: BlockShape[] = [];
    const skipped: string[] = [];
    for (const [i, shape] of d.submit.entries()) {
      if (check !== undefined && i >= check.forced) {
        const at = await tracker.expectedStart(shape);
        const wait = at === undefined ? undefined : Math.max(0, at - this.clock.now());
        const drain = drainMs(check.tasks, check.taskMs, check.workersNow, check.arrivals);
        if (wait !== undefined && wait > drain) {
          skipped.push(`${shape.nodes} node(s): the scheduler expects it to start in ~${secs(wait)}, the backlog is drained in ~${secs(drain)} by the workers running or coming`);
          continue;
        }
        check.arrivals.push({ atMs: wait ?? this.deps.tracker.queueWaitMs(shape) ?? Infinity, workers: shape.nodes * check.workersPerNode });
      }
      if ((await tracker.submit(shape)) === null) break;
      submitted.push(shape);
    }
    if (skipped.length > 0) {
      d.submit = submitted;
      d.reason += `; not submitted: ${skipped.join('; ')}`;
    }
  }
}
