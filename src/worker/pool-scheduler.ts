/**
 * Which user gets a free worker slot, and which process runs it: the manager's pool policy, with no I/O and no
 * clock of its own (the caller passes `now`), so it is unit-tested on a fake clock (test/unit/pool-scheduler).
 *
 * Slots count CPU, processes are warm state. A manager runs at most `slots` tasks windows at once (its
 * workers: cores / cores_per_worker), but keeps up to `maxProcesses` worker processes, each owned by one user
 * for its whole life. A process holds a slot while it has tasks in flight, or while it starts for a user who
 * asked for it; an idle process holds none and stays warm for its user's next task. So users on a shared
 * endpoint take turns on the slots without restarting a process at each turn (a restart costs ~100 ms of a
 * core; before this, three users on two slots rotated workers and each turn restarted one: honest p50 18.8 s).
 *
 * The policy, in order, each time the pool has queued tasks it could not place on its busy processes:
 * 1. Free slots go to the waiting user with the fewest slots held (ties: the one whose last turn is oldest),
 *    one at a time. Its own idle process takes it; else a new process starts for it, evicting the least
 *    recently used idle process (users with nothing queued first) when the pool is at `maxProcesses`.
 * 2. With no free slot, a waiting user who holds fewer slots than another user gets one of theirs: at once
 *    when the gap is two or more, else once that user has held its slot for `sliceMs` (turns; 20 ms by default:
 *    a turn costs no process start, and a task of the waiting user waits about one slice).
 *    The giving process *yields*: it takes no new tasks and frees its slot when its window empties. A
 *    yielding process counts as a promise to the neediest waiting user, so no more yield than are owed.
 * A process never changes user: isolation holds by construction, whatever this policy decides.
 */
/** A worker process as the policy sees it (the pool's own records, read in place: no copy per decision). */
export interface ProcView {
  readonly user: string;
  /** Said ready: may take tasks. */
  ready: boolean;
  /** Started for queued tasks of its user (holds a slot while it starts), not as a warm spare. */
  wanted: boolean;
  /** Tasks sent and not answered. */
  inflight: { readonly length: number };
  /** Takes no new tasks; its slot goes to another user once its window empties. */
  yielding: boolean;
  /** When it last began holding a slot (ms). */
  busySince: number;
  /** When its window last emptied (ms): the least recently used idle process is evicted first. */
  idleSince: number;
}

/** Queued tasks per user (user-queues.ts). */
export interface QueueView {
  pending(user: string): number;
  waiting(): Iterable<string>;
}

export interface PoolSchedulerOptions {
  /** Task windows that may run at once (the manager's workers). */
  slots: number;
  /** Most worker processes, busy and warm idle (at least `slots`). */
  maxProcesses: number;
  /** How long a user keeps a slot another user with fewer slots is waiting for (ms). */
  sliceMs: number;
}

/** What the pool does: yield these, end these, then give each start a slot (its own idle process, or a new one). */
export interface Plan<P extends ProcView> {
  yield: P[];
  evict: P[];
  /** `proc` set: that idle process takes tasks now; unset: start a new process for `user`. */
  start: Array<{ user: string; proc?: P }>;
}

/** Does this process hold a slot? */
export function holdsSlot(p: ProcView): boolean {
  return p.inflight.length > 0 || (!p.ready && p.wanted);
}

export class PoolScheduler {
  /** When each user last got a slot (ms): ties go to the user who waited longest. */
  private readonly lastTurn = new Map<string, number>();

  constructor(readonly options: PoolSchedulerOptions) {
    if (!(options.slots >= 1)) throw new Error(`slots must be at least 1, got ${options.slots}`);
    if (!(options.maxProcesses >= options.slots)) throw new Error(`maxProcesses (${options.maxProcesses}) must be at least slots (${options.slots})`);
  }

  /**
   * Decide, for queued tasks the busy processes could not take (the caller has topped those up first).
   * `window`: tasks a process may hold, so a starting process counts for that many of its user's tasks.
   */
  plan<P extends ProcView>(now: number, procs: readonly P[], queues: QueueView, window: number): Plan<P> {
    const out: Plan<P> = { yield: [], evict: [], start: [] };
    const held = new Map<string, number>();
    const starting = new Map<string, number>();
    const yielding = new Map<string, number>();
    let used = 0;
    let promised = 0;
    for (const p of procs) {
      if (holdsSlot(p)) {
        used++;
        held.set(p.user, (held.get(p.user) ?? 0) + 1);
      }
      if (!p.ready) starting.set(p.user, (starting.get(p.user) ?? 0) + 1);
      if (p.yielding) {
        promised++;
        yielding.set(p.user, (yielding.get(p.user) ?? 0) + 1);
      }
    }
    // Users who want one more slot: tasks queued beyond what their starting processes will take, and no
    // process of theirs yielding (they would take back the slot they are giving).
    const wants: string[] = [];
    for (const user of queues.waiting()) {
      if (yielding.has(user)) continue;
      if (queues.pending(user) > window * (starting.get(user) ?? 0)) wants.push(user);
    }
    if (wants.length === 0) return out;
    const heldBy = (u: string) => held.get(u) ?? 0;
    const order = (a: string, b: string) => heldBy(a) - heldBy(b) || (this.lastTurn.get(a) ?? -Infinity) - (this.lastTurn.get(b) ?? -Infinity);
    wants.sort(order);

    // 1. Free slots, neediest first (each user one slot per decision: the next fill may give another).
    let free = this.options.slots - used;
    let count = procs.length;
    /** Processes this decision already evicts or gives a slot: neither is chosen again. */
    const taken = new Set<P>();
    const granted = new Set<string>();
    for (const user of wants) {
      if (free <= 0) break;
      let proc: P | undefined;
      for (const p of procs) {
        if (p.user === user && p.ready && p.inflight.length === 0 && !p.yielding && !taken.has(p)) {
          proc = p;
          break;
        }
      }
      if (!proc && count >= this.options.maxProcesses) {
        const victim = this.victim(procs, queues, taken, user);
        if (!victim) continue; // every process holds a slot or is its own: nothing to evict for this user
        taken.add(victim);
        out.evict.push(victim);
        count--;
      }
      if (proc) taken.add(proc);
      else count++;
      out.start.push(proc ? { user, proc } : { user });
      free--;
      held.set(user, heldBy(user) + 1);
      granted.add(user);
      this.lastTurn.set(user, now);
    }
    if (free > 0) return out;

    // 2. Turns: waiting users not covered by a yield already promised take one slot each from the richest.
    for (const user of wants) {
      if (granted.has(user)) continue;
      if (promised > 0) {
        promised--;
        continue;
      }
      const mine = heldBy(user);
      let donor: P | undefined;
      let donorHeld = -1;
      for (const p of procs) {
        if (p.user === user || p.yielding || p.inflight.length === 0 || !p.ready) continue;
        const theirs = heldBy(p.user) - (yielding.get(p.user) ?? 0);
        const due = theirs >= mine + 2 || (theirs > mine && now - p.busySince >= this.options.sliceMs);
        if (!due) continue;
        if (theirs > donorHeld || (theirs === donorHeld && p.busySince < donor!.busySince)) {
          donor = p;
          donorHeld = theirs;
        }
      }
      if (!donor) continue;
      donor.yielding = true;
      out.yield.push(donor);
      this.lastTurn.set(donor.user, now); // its turn ends: it goes behind the users who waited
      yielding.set(donor.user, (yielding.get(donor.user) ?? 0) + 1);
    }
    return out;
  }

  /** The idle process to end for `user`'s new one: least recently used, of users with nothing queued first. */
  private victim<P extends ProcView>(procs: readonly P[], queues: QueueView, taken: Set<P>, user: string): P | undefined {
    let best: P | undefined;
    let bestRank = Infinity;
    for (const p of procs) {
      if (p.user === user || holdsSlot(p) || p.yielding || taken.has(p)) continue;
      // Rank: a spare of a user with nothing queued before one of a waiting user; then the oldest idle.
      const rank = (queues.pending(p.user) > 0 ? 1e15 : 0) + p.idleSince;
      if (rank < bestRank) {
        best = p;
        bestRank = rank;
      }
    }
    return best;
  }

  /** Forget users with no process and nothing queued (called on the pool's tick, not per task). */
  prune(procs: readonly ProcView[], queues: QueueView): void {
    if (this.lastTurn.size === 0) return;
    const live = new Set<string>(queues.waiting());
    for (const p of procs) live.add(p.user);
    for (const user of this.lastTurn.keys()) if (!live.has(user)) this.lastTurn.delete(user);
  }
}

/** The default process cap: twice the slots, and at least four spare processes for users (small nodes). */
export function defaultMaxProcesses(slots: number, perSlot: number, atLeastSpare: number): number {
  return Math.max(slots * perSlot, slots + atLeastSpare);
}
