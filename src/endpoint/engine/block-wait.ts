/**
 * Queue wait: how long blocks wait in the scheduler's queue (submitted → running), as a moving estimate per
 * block shape (nodes × walltime, within the provider's one partition or queue). The tracker feeds it every
 * start it sees; the strategy asks it whether a new block would start before the work is done anyway
 * (see `drainMs` and strategy.ts).
 *
 * The estimate is an exponentially weighted moving average of the waits seen, and never less than the wait
 * of a block of the same shape that is still pending: on a cluster that just became busy, the blocks waiting
 * now say more than the ones that started an hour ago.
 */
import type { BlockShape } from './block-types.js';

/** Weight of the newest wait in the moving average. */
export const QUEUE_WAIT_ALPHA = 0.3;

/** A block still waiting, as the estimate needs it. */
export interface WaitingBlock { nodes: number; walltimeS: number; submittedAt: number }

/** One shape's estimate, for `status`. */
export interface QueueWaitView {
  /** "1 node × 600 s", the shape in words. */
  shape: string;
  nodes: number;
  /** null: no walltime. */
  walltimeS: number | null;
  /** The estimate now (seconds), pending blocks included. */
  estimateS: number;
  /** Starts seen, and the last one's wait (seconds). */
  samples: number;
  lastS: number | null;
  /** Blocks of this shape still waiting, and the longest wait among them so far (seconds). */
  waiting: number;
}

interface ShapeWaits { nodes: number; walltimeS: number; ewmaMs: number; samples: number; lastMs: number }

const keyOf = (s: { nodes: number; walltimeS: number }): string => `${s.nodes}x${Number.isFinite(s.walltimeS) ? s.walltimeS : 'none'}`;
const words = (s: { nodes: number; walltimeS: number }): string =>
  `${s.nodes} node${s.nodes === 1 ? '' : 's'} × ${Number.isFinite(s.walltimeS) ? `${s.walltimeS} s` : 'no walltime'}`;

export class QueueWaitEstimator {
  private readonly shapes = new Map<string, ShapeWaits>();

  constructor(private readonly alpha = QUEUE_WAIT_ALPHA) {}

  /** A block of `shape` started `waitMs` after its submission. */
  observe(shape: BlockShape, waitMs: number): void {
    const w = Math.max(0, waitMs);
    const key = keyOf(shape);
    const s = this.shapes.get(key);
    if (s === undefined) {
      this.shapes.set(key, { nodes: shape.nodes, walltimeS: shape.walltimeS, ewmaMs: w, samples: 1, lastMs: w });
      return;
    }
    s.ewmaMs = this.alpha * w + (1 - this.alpha) * s.ewmaMs;
    s.samples++;
    s.lastMs = w;
  }

  /**
   * The expected wait of a new block of `shape` (ms), or undefined when nothing is known of it. Without a
   * start of this very shape, the starts of blocks with as many nodes and the nearest walltime stand in
   * (the strategy sizes walltimes to the work, so they vary). Never less than the longest wait of a block
   * of the same node count still waiting.
   */
  estimate(shape: BlockShape, now: number, waiting: readonly WaitingBlock[] = []): number | undefined {
    let seen = this.shapes.get(keyOf(shape))?.ewmaMs;
    if (seen === undefined) {
      let best: ShapeWaits | undefined;
      const dist = (s: ShapeWaits): number => Math.abs((Number.isFinite(s.walltimeS) ? s.walltimeS : 1e12) - (Number.isFinite(shape.walltimeS) ? shape.walltimeS : 1e12));
      for (const s of this.shapes.values()) {
        if (s.nodes === shape.nodes && (best === undefined || dist(s) < dist(best))) best = s;
      }
      seen = best?.ewmaMs;
    }
    let longest: number | undefined;
    for (const b of waiting) {
      if (b.nodes === shape.nodes) longest = Math.max(longest ?? 0, now - b.submittedAt);
    }
    if (seen === undefined) return longest;
    return longest === undefined ? seen : Math.max(seen, longest);
  }

  /** Every shape seen or waiting, for `status`. */
  snapshot(now: number, waiting: readonly WaitingBlock[] = []): QueueWaitView[] {
    const all = new Map<string, { nodes: number; walltimeS: number }>();
    for (const [k, s] of this.shapes) all.set(k, s);
    for (const b of waiting) if (!all.has(keyOf(b))) all.set(keyOf(b), b);
    const s = (ms: number): number => Math.round(ms / 1000);
    return [...all.entries()].map(([key, shape]) => {
      const seen = this.shapes.get(key);
      const mine = waiting.filter((b) => keyOf(b) === key);
      return {
        shape: words(shape), nodes: shape.nodes, walltimeS: Number.isFinite(shape.walltimeS) ? shape.walltimeS : null,
        estimateS: s(this.estimate(shape, now, mine) ?? 0), samples: seen?.samples ?? 0,
        lastS: seen === undefined ? null : s(seen.lastMs), waiting: mine.length,
      };
    });
  }
}

/** Workers that will join at `atMs` (relative to now; Infinity: not expected). */
export interface Arrival { atMs: number; workers: number }

/**
 * How long (ms from now) the workers running now plus those arriving take to finish `tasks` tasks of
 * `taskMs` each, every worker taking one task at a time. Infinity when no worker is running or coming.
 * At least one task's duration while there is work: a task is not shared between workers.
 */
export function drainMs(tasks: number, taskMs: number, workersNow: number, arrivals: readonly Arrival[]): number {
  if (tasks <= 0) return 0;
  let work = tasks * taskMs; // worker-ms left
  let rate = workersNow;
  let t = 0;
  const coming = arrivals.filter((a) => Number.isFinite(a.atMs) && a.workers > 0).sort((a, b) => a.atMs - b.atMs);
  for (const a of coming) {
    const at = Math.max(0, a.atMs);
    if (rate > 0 && t + work / rate <= at) break;
    work -= rate * (at - t);
    t = at;
    rate += a.workers;
  }
  if (rate <= 0) return Infinity;
  return Math.max(taskMs, t + work / rate);
}
