/**
 * The MPI gate of a block's one manager (engine mode "mpi"): tasks from the interchange wait here until the
 * node packer gives them nodes; each then goes to a worker with its placement (nodes and launch prefix)
 * written into its body. Results free the nodes. A task asking for more nodes than the block has fails at
 * once, naming both numbers.
 *
 * The gate decodes task bodies: in MPI mode a task is seconds of MPI work and its resource specification
 * is what placement is about, so the decode is cheap beside what it buys.
 *
 * Nodes that vanish: when a placed task fails, its nodes are held while the node probe (the scheduler's view,
 * see node-probe.ts) says whether any is gone; the probe also runs every `probeEveryMs`. A node found gone
 * is never handed out again, a task that failed on it fails with MPINodeLost naming the node and why, and
 * the gate closes: it places nothing more and drops the tasks waiting in it (the interchange retries them
 * when the manager, draining, says bye), so the strategy replaces the block.
 */
import { decodeOutcome, decodeTask, encodeTask, errorOutcome, type TaskBody } from '../../protocol/payload.js';
import type { ResultEnvelope, TaskEnvelope } from '../../protocol/messages.js';
import type { ResourceSpec } from '../../protocol/resource-spec.js';
import { NodePacker, type PackerSnapshot } from './node-packer.js';
import { mpiPrefix, type MpiLauncherName } from './prefix.js';
import type { NodeProbe } from './node-probe.js';

export interface MpiGateOptions {
  nodes: string[];
  launcher: MpiLauncherName;
  /** One line appended to every prefix (site flags, e.g. Open MPI's --mca options). @default "" */
  overrides?: string;
  /** Epoch ms when the block ends, or null. */
  endsAt: number | null;
  /** Tasks that got nodes, ready for a worker. */
  onReady: (tasks: TaskEnvelope[]) => void;
  /** Tasks refused here (their failure results). */
  onRefused: (results: ResultEnvelope[]) => void;
  /** Asks which nodes are gone; none: a failed task stays a failure of its own. */
  probe?: NodeProbe;
  /** How often the probe looks at every node while the gate is open. @default 30000 */
  probeEveryMs?: number;
  /** Results held for the probe, now to send (their errors name the nodes found gone). */
  onLate?: (results: ResultEnvelope[]) => void;
  /** The first time nodes are found gone: the gate has closed; the manager should drain. */
  onNodesLost?: (gone: ReadonlyMap<string, string>) => void;
  now?: () => number;
}

interface Held {
  env: TaskEnvelope;
  body: TaskBody;
  spec: ResourceSpec;
  key: string;
}

const ONE: ResourceSpec = { num_nodes: 1, ranks_per_node: 1, num_ranks: 1 };

export class MpiGate {
  readonly packer: NodePacker<Held>;
  private readonly estimates = new Map<string, number>();
  private readonly keyOf = new Map<string, string>();
  private readonly now: () => number;
  private closed = false;
  private timer?: NodeJS.Timeout;

  constructor(private readonly options: MpiGateOptions) {
    this.packer = new NodePacker<Held>(options.nodes, options.endsAt);
    this.now = options.now ?? Date.now;
    if (options.probe) {
      this.timer = setInterval(() => void this.checkNodes(), options.probeEveryMs ?? 30_000);
      this.timer.unref();
    }
  }

  /** Tasks waiting for nodes plus tasks holding nodes (a failed one holds them until the probe answers). */
  get pending(): number {
    return this.packer.waitingCount + this.packer.runningCount;
  }

  /** Nodes gone, with why. */
  get lostNodes(): ReadonlyMap<string, string> {
    return this.packer.lostNodes;
  }

  /** Closed (a node is gone): nothing more is placed here. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Stop the periodic probe. Idempotent. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Ask the probe about every node still in the block; close the gate if one is gone. */
  async checkNodes(): Promise<void> {
    const probe = this.options.probe;
    if (!probe || this.closed) return;
    const alive = this.options.nodes.filter((n) => !this.packer.lostNodes.has(n));
    this.nodesGone(await probe(alive));
  }

  add(tasks: TaskEnvelope[]): void {
    // Closed: the tasks are dropped here; the interchange retries them when this manager says bye.
    if (this.closed) return;
    const refused: ResultEnvelope[] = [];
    for (const env of tasks) {
      let body: TaskBody;
      try {
        body = decodeTask(env.payload);
      } catch (err) {
        refused.push({ id: env.id, failed: true, payload: errorOutcome('InvalidTask', (err as Error).message) });
        continue;
      }
      const spec = body.resources ?? (body.kind === 'mpi' ? { num_nodes: 1, ranks_per_node: body.ranks, num_ranks: body.ranks } : ONE);
      if (spec.num_nodes > this.packer.size) {
        refused.push({
          id: env.id,
          failed: true,
          payload: errorOutcome(
            'ResourceUnavailable',
            `task asks for num_nodes ${spec.num_nodes}, but this MPI block has ${this.packer.size} nodes (${this.options.nodes.join(',')})`,
          ),
        });
        continue;
      }
      const key = body.kind === 'js' ? `js:${body.functionId}` : `${body.kind}:${body.command}`;
      this.keyOf.set(env.id, key);
      this.packer.add({ id: env.id, nodes: spec.num_nodes, estimateMs: this.estimates.get(key), item: { env, body, spec, key } });
    }
    if (refused.length) this.options.onRefused(refused);
    this.pump();
  }

  /**
   * Results of tasks that ran: free their nodes, learn durations, start what can start. Returns the results
   * to send now; a failed one is held while the probe looks at its nodes and comes back through onLate.
   */
  done(results: ResultEnvelope[]): ResultEnvelope[] {
    let freed = false;
    let send = results;
    for (let i = 0; i < results.length; i++) {
      const r = results[i];
      const key = this.keyOf.get(r.id);
      if (key === undefined) continue;
      this.keyOf.delete(r.id);
      if (r.failed) {
        const nodes = this.packer.nodesOf(r.id) ?? [];
        const known = this.goneAmong(nodes);
        if (known.size > 0) {
          if (send === results) send = results.slice();
          send[send.indexOf(r)] = nodeLostResult(r, nodes, known);
        } else if (this.options.probe && nodes.length > 0) {
          if (send === results) send = results.slice();
          send.splice(send.indexOf(r), 1);
          void this.probeFailed(r, nodes);
          continue; // its nodes stay held until the probe answers
        }
      }
      if (this.packer.release(r.id)) freed = true;
      if (r.ms !== undefined && !r.failed) {
        const prev = this.estimates.get(key);
        this.estimates.set(key, prev === undefined ? r.ms : prev * 0.7 + r.ms * 0.3);
      }
    }
    if (freed) this.pump();
    return send;
  }

  private goneAmong(nodes: readonly string[]): Map<string, string> {
    const gone = new Map<string, string>();
    for (const n of nodes) {
      const why = this.packer.lostNodes.get(n);
      if (why !== undefined) gone.set(n, why);
    }
    return gone;
  }

  private async probeFailed(r: ResultEnvelope, nodes: string[]): Promise<void> {
    let gone: Map<string, string>;
    try {
      gone = await this.options.probe!(nodes);
    } catch {
      gone = new Map();
    }
    this.nodesGone(gone);
    const known = this.goneAmong(nodes);
    const out = known.size > 0 ? nodeLostResult(r, nodes, known) : r;
    this.packer.release(r.id);
    this.options.onLate?.([out]);
    this.pump();
  }

  private nodesGone(gone: ReadonlyMap<string, string>): void {
    const fresh = new Map([...gone].filter(([n]) => !this.packer.lostNodes.has(n) && this.options.nodes.includes(n)));
    if (fresh.size === 0) return;
    this.packer.markLost(fresh);
    if (this.closed) return;
    this.closed = true;
    this.stop();
    for (const t of this.packer.takeWaiting()) this.keyOf.delete(t.id);
    this.options.onNodesLost?.(fresh);
  }

  private pump(): void {
    if (this.closed) return;
    const now = this.now();
    const starts = this.packer.schedule(now);
    if (starts.length === 0) return;
    const ready: TaskEnvelope[] = [];
    for (const { task, nodes } of starts) {
      const { env, body, spec } = task.item;
      body.placement = { nodes, prefix: mpiPrefix(this.options.launcher, nodes, spec, this.options.overrides), at: now };
      ready.push({ ...env, payload: encodeTask(body) });
    }
    this.options.onReady(ready);
  }

  snapshot(): PackerSnapshot {
    return this.packer.snapshot();
  }
}

/** `r`'s failure restated: the nodes gone first, then the task's own error. */
function nodeLostResult(r: ResultEnvelope, nodes: readonly string[], gone: ReadonlyMap<string, string>): ResultEnvelope {
  let own = '';
  try {
    const o = decodeOutcome(r.payload);
    if (!o.ok) own = `\n${o.error.type}: ${o.error.message}`;
  } catch {
    /* an undecodable failure: the nodes are the news */
  }
  const which = [...gone].map(([n, why]) => `${n} (${why})`).join(', ');
  const message =
    `MPI task ${r.id} on nodes ${nodes.join(',')} failed: node${gone.size > 1 ? 's' : ''} ${which} ` +
    `vanished from the block; the block is drained and will be replaced${own}`;
  return { ...r, failed: true, payload: errorOutcome('MPINodeLost', message) };
}
