/**
 * The interchange's book of managers: who is registered, their credit, their block and its end, and the
 * ids of managers declared lost (so their late messages are recognised and dropped).
 */
import type { PoolView, RegisterMessage } from '../../protocol/messages.js';
import type { BlockLoad } from './strategy.js';

export type ManagerRecordState = 'active' | 'draining';

export interface ManagerRecord {
  key: string;
  identity: Buffer;
  id: string;
  blockId: string;
  hostname: string;
  node: string;
  workers: number;
  /** Tasks it accepts in flight (its credit window). */
  capacity: number;
  outstanding: number;
  lastSeen: number;
  registeredAt: number;
  /** Epoch ms when its block's walltime ends, or null. */
  endsAt: number | null;
  /** Since when it has had nothing in flight; null while busy. */
  idleSince: number | null;
  state: ManagerRecordState;
  /** Engine mode "mpi": the block's nodes and the task holding each, as the manager last reported. */
  mpiNodes?: Array<{ node: string; task: string | null; lost?: string }>;
  /** Its worker pools per user, as its last heartbeat said (none before the first). */
  pools?: PoolView[];
}

const LOST_MEMORY = 100_000;

export class ManagerRegistry {
  private readonly managers = new Map<string, ManagerRecord>();
  private readonly lost = new Set<string>();
  /** Blocks the strategy put on hold: no new task goes to their managers. */
  readonly heldBlocks = new Set<string>();
  /** Every block that ever had a manager register. */
  readonly blocksSeen = new Set<string>();

  get(key: string): ManagerRecord | undefined {
    return this.managers.get(key);
  }

  get size(): number {
    return this.managers.size;
  }

  wasLost(key: string): boolean {
    return this.lost.has(key);
  }

  add(identity: Buffer, key: string, reg: RegisterMessage): ManagerRecord {
    const now = Date.now();
    const record: ManagerRecord = {
      key,
      identity,
      id: reg.managerId,
      blockId: reg.blockId,
      hostname: reg.hostname,
      node: typeof reg.node === 'string' ? reg.node : reg.hostname,
      workers: reg.workers,
      capacity: reg.capacity,
      outstanding: 0,
      lastSeen: now,
      registeredAt: now,
      endsAt: reg.endsAt,
      idleSince: now,
      state: 'active',
    };
    this.managers.set(key, record);
    this.lost.delete(key);
    if (reg.blockId) this.blocksSeen.add(reg.blockId);
    return record;
  }

  remove(m: ManagerRecord, markLost: boolean): void {
    this.managers.delete(m.key);
    if (markLost) {
      if (this.lost.size >= LOST_MEMORY) this.lost.clear();
      this.lost.add(m.key);
    }
  }

  all(): ManagerRecord[] {
    return [...this.managers.values()];
  }

  inBlock(blockId: string): ManagerRecord[] {
    return this.all().filter((m) => m.blockId === blockId);
  }

  /** Managers that may take tasks now: active, not held, with free credit and walltime left. */
  withCredit(now: number, walltimeMarginMs: number): ManagerRecord[] {
    const out: ManagerRecord[] = [];
    for (const m of this.managers.values()) {
      if (m.state !== 'active' || m.outstanding >= m.capacity) continue;
      if (this.heldBlocks.size > 0 && this.heldBlocks.has(m.blockId)) continue;
      if (m.endsAt !== null && m.endsAt - now <= Math.min(walltimeMarginMs, 1000)) continue;
      out.push(m);
    }
    return out;
  }

  inflightTotal(): number {
    let n = 0;
    for (const m of this.managers.values()) n += m.outstanding;
    return n;
  }

  loadByBlock(): Map<string, BlockLoad> {
    const loads = new Map<string, BlockLoad>();
    for (const m of this.managers.values()) {
      const load = loads.get(m.blockId) ?? { managers: 0, workers: 0, busyWorkers: 0, idleSinceMs: 0 as number | null };
      load.managers++;
      load.workers += m.workers;
      load.busyWorkers += Math.min(m.outstanding, m.workers);
      // The block is idle since its most recently busy manager went idle; busy if any manager is.
      if (m.idleSince === null || load.idleSinceMs === null) load.idleSinceMs = null;
      else load.idleSinceMs = Math.max(load.idleSinceMs, m.idleSince);
      loads.set(m.blockId, load);
    }
    return loads;
  }
}
