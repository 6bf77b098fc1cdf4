/**
 * The MPI gate of a block's one manager (engine mode "mpi"): tasks from the interchange wait here until the
 * node packer gives them nodes; each then goes to a worker with its placement (nodes and launch prefix)
 * written into its body. Results free the nodes. A task asking for more nodes than the block has fails at
 * once, naming both numbers.
 *
 * The gate decodes task bodies: in MPI mode a task is seconds of MPI work and its resource specification
 * is what placement is about, so the decode is cheap beside what it buys.
 */
import { decodeTask, encodeTask, errorOutcome, type TaskBody } from '../../protocol/payload.js';
import type { ResultEnvelope, TaskEnvelope } from '../../protocol/messages.js';
import type { ResourceSpec } from '../../protocol/resource-spec.js';
import { NodePacker, type PackerSnapshot } from './node-packer.js';
import { mpiPrefix, type MpiLauncherName } from './prefix.js';

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

  constructor(private readonly options: MpiGateOptions) {
    this.packer = new NodePacker<Held>(options.nodes, options.endsAt);
    this.now = options.now ?? Date.now;
  }

  /** Tasks waiting for nodes plus tasks holding nodes. */
  get pending(): number {
    return this.packer.waitingCount + this.packer.runningCount;
  }

  add(tasks: TaskEnvelope[]): void {
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

  /** Results of tasks that ran: free their nodes, learn durations, start what can start. */
  done(results: readonly ResultEnvelope[]): void {
    let freed = false;
    for (const r of results) {
      const key = this.keyOf.get(r.id);
      if (key === undefined) continue;
      this.keyOf.delete(r.id);
      if (this.packer.release(r.id)) freed = true;
      if (r.ms !== undefined && !r.failed) {
        const prev = this.estimates.get(key);
        this.estimates.set(key, prev === undefined ? r.ms : prev * 0.7 + r.ms * 0.3);
      }
    }
    if (freed) this.pump();
  }

  private pump(): void {
    const starts = this.packer.schedule(this.now());
    if (starts.length === 0) return;
    const ready: TaskEnvelope[] = [];
    for (const { task, nodes } of starts) {
      const { env, body, spec } = task.item;
      body.placement = { nodes, prefix: mpiPrefix(this.options.launcher, nodes, spec, this.options.overrides) };
      ready.push({ ...env, payload: encodeTask(body) });
    }
    this.options.onReady(ready);
  }

  snapshot(): PackerSnapshot {
    return this.packer.snapshot();
  }
}
