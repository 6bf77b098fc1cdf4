/** How many blocks of which shape the strategy submits (see strategy.ts). */
import type { BlockShape } from './blocks.js';
import { DEFAULT_ESTIMATE_MS, type ResolvedStrategyOptions } from './strategy.js';

const secs = (ms: number): string => `${Math.round(ms / 1000)} s`;
const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

export interface PlanInput {
  missingWorkers: number; minNew: number; freeSlots: number; demand: number; capacityWorkers: number;
  estimateMs: number | undefined;
}

/**
 * The block shapes to submit. Every task needs one worker, so the backlog clears soonest once every task has
 * one: ask for just those nodes (more would not be sooner), in the fewest blocks (largest first, within
 * max_blocks). The walltime, when it is a range, covers the clearing time at the estimated task duration
 * plus walltime_margin and one period, rounded up to a minute; blocks kept only for min/init_blocks get
 * the longest walltime allowed, so they are not replaced often.
 */
export function planShapes(o: ResolvedStrategyOptions, p: PlanInput): { shapes: BlockShape[]; why: string } {
  const wpn = o.workersPerNode;
  const nodes: number[] = [];
  let capped = false;
  if (p.missingWorkers > 0) {
    const want = Math.ceil(p.missingWorkers / wpn);
    const total = Math.min(want, p.freeSlots * o.nodes.max);
    capped = total < want;
    for (let rest = total; rest > 0 && nodes.length < p.freeSlots; ) {
      const n = clamp(rest, o.nodes.min, o.nodes.max);
      nodes.push(n);
      rest -= n;
    }
  }
  while (nodes.length < p.minNew && nodes.length < p.freeSlots) nodes.push(o.nodes.min);
  if (nodes.length < p.minNew) capped = true;

  const estimate = p.estimateMs ?? DEFAULT_ESTIMATE_MS;
  const estWords = `${(estimate / 1000).toFixed(1)} s/task${p.estimateMs === undefined ? ' (default estimate)' : ''}`;
  const workers = p.capacityWorkers + nodes.reduce((n, x) => n + x, 0) * wpn;
  const clearMs = p.demand > 0 ? Math.ceil(p.demand / workers) * estimate : 0;
  const w = o.walltimeS;
  let walltimeS = w.max;
  let wallWhy = Number.isFinite(w.max) ? `walltime ${w.max} s` : 'no walltime';
  if (w.min !== w.max && p.demand > 0) {
    const wantS = Math.ceil((clearMs + o.walltimeMarginMs + o.periodMs) / 60_000) * 60;
    walltimeS = clamp(wantS, w.min, w.max);
    wallWhy = `walltime ${walltimeS} s (clearing time + walltime_margin + period = ${wantS} s, within ${w.min}..${w.max} s)`;
  } else if (w.min !== w.max) wallWhy = `walltime ${walltimeS} s (the longest allowed: no work to size it for)`;

  const shapes = nodes.map((n) => ({ nodes: n, walltimeS }));
  const sizes = nodes.join('+');
  const range = o.nodes.min !== o.nodes.max ? ` (nodes_per_block ${o.nodes.min}..${o.nodes.max}: fewest blocks with one worker per task)` : '';
  const clears = p.demand > 0 ? `, ${workers} worker(s) clear ${p.demand} task(s) in ~${secs(clearMs)} at ${estWords}` : '';
  const cap = capped ? `; capped by max_blocks ${o.maxBlocks}` : '';
  return { shapes, why: `submit ${nodes.length} block(s) of ${sizes} node(s)${range}, ${wallWhy}${clears}${cap}` };
}
