/**
 * Small pure helpers of the interchange: port ranges, and how to print a peer id chosen by a possibly hostile
 * peer. (A registration's fields are checked by parseFromManager in protocol/messages.ts.)
 */

/** The ports of a [low, high] range, in order. */
export function portRange(low: number, high: number): number[] {
  const out: number[] = [];
  for (let p = low; p <= high; p++) out.push(p);
  return out;
}

/** A peer id safe to print (ids are ours, but a hostile peer chooses its own). */
export function printable(key: string): string {
  return /^[\x20-\x7e]{1,64}$/.test(key) ? key : Buffer.from(key, 'latin1').toString('hex').slice(0, 32);
}
