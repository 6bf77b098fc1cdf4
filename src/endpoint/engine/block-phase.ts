/**
 * What the endpoint is doing with a block, apart from what the scheduler says of its job (`state`, where
 * `held` means the scheduler holds the job):
 * - serving: takes tasks;
 * - held: the strategy holds it (no new task; given back on a later tick if still idle);
 * - draining: near its walltime, its managers finish their tasks and leave;
 * - cancelling: we asked the scheduler to cancel it; the block stays until status confirms.
 */
export type BlockPhase = 'serving' | 'held' | 'draining' | 'cancelling';

/** The one transition table of a block's phase. */
const NEXT: Readonly<Record<BlockPhase, readonly BlockPhase[]>> = {
  serving: ['held', 'draining', 'cancelling'],
  held: ['serving', 'draining', 'cancelling'],
  draining: ['cancelling'],
  cancelling: [],
};

/** The phase after `to`; the same phase is no change; anything else not in the table throws. */
export function nextPhase(blockId: string, from: BlockPhase, to: BlockPhase): BlockPhase {
  if (from === to || NEXT[from].includes(to)) return to;
  throw new Error(`block ${blockId}: no transition from ${from} to ${to}`);
}
