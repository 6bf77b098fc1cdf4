/**
 * Small pure checks the interchange applies to what peers send: a registration's fields, and how to print
 * a peer id chosen by a possibly hostile peer.
 */
import type { RegisterMessage } from '../../protocol/messages.js';

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

export function checkRegistration(reg: RegisterMessage): string | undefined {
  if (typeof reg.managerId !== 'string' || reg.managerId.length === 0) return 'registration has no managerId';
  if (!Number.isInteger(reg.workers) || reg.workers < 1 || reg.workers > 100_000) return 'registration has no valid worker count';
  if (!Number.isInteger(reg.capacity) || reg.capacity < 1) return 'registration has no valid capacity';
  if (reg.endsAt !== null && typeof reg.endsAt !== 'number') return 'registration endsAt is neither null nor a number';
  if (typeof reg.blockId !== 'string' || typeof reg.hostname !== 'string') return 'registration blockId/hostname are not strings';
  return undefined;
}
