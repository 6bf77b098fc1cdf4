/**
 * The node packer of an MPI block: hands disjoint sets of the block's nodes to tasks, first come first
 * served, with EASY backfilling. When the oldest waiting task (the head) does not fit, it gets a reservation:
 * the time the running tasks' expected ends free enough nodes for it (its shadow time). A later task may
 * start before it only if it is expected to finish before that time, or if it uses only nodes the head will
 * not need then. So a small task never delays a large waiting one, and the large one cannot starve.
 * A task whose learned duration is longer than the block's remaining walltime is not started here.
 *
 * Pure and synchronous: time comes in as an argument; tested without processes.
 */

export interface PackerTask<T> {
  id: string;
  /** Nodes it needs (1..block size; the caller refuses larger requests before they get here). */
  nodes: number;
  /** Learned duration in ms, if any. */
  estimateMs?: number;
  item: T;
}

export interface Start<T> {
  task: PackerTask<T>;
  nodes: string[];
}

interface Running<T> {
  task: PackerTask<T>;
  nodes: string[];
  endsAt: number;
}

export interface PackerSnapshot {
  /** Every node of the block with the task that holds it (null when free) and, for a node gone, why. */
  nodes: Array<{ node: string; task: string | null; lost?: string }>;
  waiting: number;
  /** Nodes the waiting tasks ask for in all. */
  waitingNodes: number;
}

export class NodePacker<T> {
  private readonly free: Set<string>;
  private readonly waiting: PackerTask<T>[] = [];
  private readonly running = new Map<string, Running<T>>();
  /** Nodes gone from the block (vanished, down): never handed out again, with why. */
  private readonly lost = new Map<string, string>();

  /** `blockEndsAt`: epoch ms when the block's walltime runs out, or null. */
  constructor(
    readonly nodes: readonly string[],
    private readonly blockEndsAt: number | null = null,
  ) {
    if (nodes.length === 0) throw new Error('an MPI block needs at least one node');
    this.free = new Set(nodes);
  }

  get size(): number {
    return this.nodes.length;
  }

  get waitingCount(): number {
    return this.waiting.length;
  }

  get runningCount(): number {
    return this.running.size;
  }

  add(task: PackerTask<T>): void {
    if (!Number.isInteger(task.nodes) || task.nodes < 1 || task.nodes > this.nodes.length) {
      throw new Error(`task ${task.id} asks for ${task.nodes} nodes; this block has ${this.nodes.length}`);
    }
    this.waiting.push(task);
  }

  /** Take back waiting tasks (e.g. to hand them back at drain); running ones stay. */
  takeWaiting(): PackerTask<T>[] {
    return this.waiting.splice(0);
  }

  /** The nodes a task holds, freed (those gone stay out); undefined if it does not run. */
  release(id: string): string[] | undefined {
    const r = this.running.get(id);
    if (!r) return undefined;
    this.running.delete(id);
    for (const n of r.nodes) if (!this.lost.has(n)) this.free.add(n);
    return r.nodes;
  }

  /** Nodes gone from the block: taken out of the free set for good (a task on one keeps it until released). */
  markLost(gone: ReadonlyMap<string, string>): void {
    for (const [n, why] of gone) {
      if (!this.nodes.includes(n) || this.lost.has(n)) continue;
      this.lost.set(n, why);
      this.free.delete(n);
    }
  }

  /** Nodes gone, with why. */
  get lostNodes(): ReadonlyMap<string, string> {
    return this.lost;
  }

  /** Nodes a running task holds. */
  nodesOf(id: string): string[] | undefined {
    return this.running.get(id)?.nodes;
  }

  /** Start what may start now; returns the starts in order. */
  schedule(now: number): Start<T>[] {
    const starts: Start<T>[] = [];
    // Tasks that cannot finish in this block's remaining walltime are passed over (left waiting).
    const fitsWalltime = (t: PackerTask<T>): boolean =>
      this.blockEndsAt === null || t.estimateMs === undefined || now + t.estimateMs <= this.blockEndsAt;
    let headIndex = -1;
    for (let i = 0; i < this.waiting.length; ) {
      const t = this.waiting[i];
      if (!fitsWalltime(t)) {
        i++;
        continue;
      }
      if (t.nodes <= this.free.size) {
        starts.push(this.start(i, now));
        continue;
      }
      headIndex = i;
      break;
    }
    if (headIndex < 0) return starts;
    const head = this.waiting[headIndex];
    // The head's reservation: when will enough nodes be free for it?
    const ends = [...this.running.values()].sort((a, b) => a.endsAt - b.endsAt);
    let avail = this.free.size;
    let shadow = Infinity;
    let extra = 0;
    for (const r of ends) {
      for (const n of r.nodes) if (!this.lost.has(n)) avail++;
      if (avail >= head.nodes) {
        shadow = r.endsAt;
        extra = avail - head.nodes;
        break;
      }
    }
    for (let i = headIndex + 1; i < this.waiting.length && this.free.size > 0; ) {
      const c = this.waiting[i];
      if (c.nodes > this.free.size || !fitsWalltime(c)) {
        i++;
        continue;
      }
      const finish = c.estimateMs === undefined ? Infinity : now + c.estimateMs;
      if (finish < shadow) {
        starts.push(this.start(i, now));
      } else if (c.nodes <= extra) {
        extra -= c.nodes;
        starts.push(this.start(i, now));
      } else {
        i++;
      }
    }
    return starts;
  }

  private start(index: number, now: number): Start<T> {
    const [task] = this.waiting.splice(index, 1);
    const nodes: string[] = [];
    for (const n of this.nodes) {
      if (nodes.length === task.nodes) break;
      if (this.free.has(n)) nodes.push(n);
    }
    for (const n of nodes) this.free.delete(n);
    this.running.set(task.id, { task, nodes, endsAt: task.estimateMs === undefined ? Infinity : now + task.estimateMs });
    return { task, nodes };
  }

  snapshot(): PackerSnapshot {
    const holder = new Map<string, string>();
    for (const [id, r] of this.running) for (const n of r.nodes) holder.set(n, id);
    return {
      nodes: this.nodes.map((node) => {
        const lost = this.lost.get(node);
        return lost === undefined ? { node, task: holder.get(node) ?? null } : { node, task: holder.get(node) ?? null, lost };
      }),
      waiting: this.waiting.length,
      waitingNodes: this.waiting.reduce((s, t) => s + t.nodes, 0),
    };
  }
}
