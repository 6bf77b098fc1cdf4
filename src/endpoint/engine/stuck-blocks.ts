/**
 * Blocks that will not become capacity although their job has not ended: the strategy cancels them and
 * replaces them while the work needs it (see strategy.ts).
 */
import type { TrackedBlock } from './blocks.js';

const secs = (ms: number): string => `${Math.round(ms / 1000)} s`;

/** A block that is not coming capacity although it has not ended. */
export interface StuckBlock { blockId: string; why: string; permanent: string | null }

/**
 * Why a block will not become capacity: the scheduler holds it, it waits for a reason that waiting cannot
 * change, or it has waited past max_pending_time. Null for a block that is fine (or already leaving).
 */
export function stuckBlock(b: Readonly<TrackedBlock>, now: number, maxPendingMs: number): StuckBlock | null {
  if (b.phase === 'cancelling' || b.drainingSince !== null || b.jobId === null) return null;
  const reason = b.reason ? ` (${b.reason})` : '';
  if (b.state === 'held') return { blockId: b.blockId, why: `held by the scheduler${reason}`, permanent: null };
  if (b.managerRegistered || b.runningSince !== null || b.state !== 'pending') return null;
  if (b.stuck) return { blockId: b.blockId, why: `pending for a reason waiting cannot change${reason}`, permanent: b.reason ?? 'unknown reason' };
  const waited = now - b.submittedAt;
  if (waited >= maxPendingMs) {
    return { blockId: b.blockId, why: `pending ${secs(waited)}, past max_pending_time ${secs(maxPendingMs)}${reason}`, permanent: null };
  }
  return null;
}

