/**
 * The endpoint's side of MPI mode: every task's resource specification is read once as it arrives. A task
 * asking for more nodes than a block of this endpoint can ever have fails at once (not after a wait for a
 * block that could never hold it); the others are counted as node demand, which the strategy sizes blocks by
 * (through `nodeView`), until their results come back.
 */
import { decodeTask, errorOutcome } from '../../protocol/payload.js';
import type { ResultEnvelope, TaskEnvelope } from '../../protocol/messages.js';
import type { BlockLoad, EngineView } from '../engine/strategy.js';

export class MpiAdmission {
  /** Nodes each unfinished task needs, by task id. */
  private readonly demand = new Map<string, number>();
  private total = 0;

  /** `maxNodesPerBlock`: the most nodes one block of this endpoint can have (nodes_per_block, or its max). */
  constructor(readonly maxNodesPerBlock: number) {}

  /** Nodes the unfinished tasks (waiting or running) need in all. */
  get nodeDemand(): number {
    return this.total;
  }

  /** Split arriving tasks into those to run and the failure results of those no block can hold. */
  admit(tasks: TaskEnvelope[]): { accepted: TaskEnvelope[]; refused: ResultEnvelope[] } {
    const accepted: TaskEnvelope[] = [];
    const refused: ResultEnvelope[] = [];
    for (const t of tasks) {
      let nodes = 1;
      try {
        const body = decodeTask(t.payload);
        nodes = body.resources?.num_nodes ?? 1;
      } catch {
        // A bad payload fails on the worker with its own clear error; count it as one node meanwhile.
      }
      if (nodes > this.maxNodesPerBlock) {
        refused.push({
          id: t.id,
          failed: true,
          payload: errorOutcome(
            'ResourceUnavailable',
            `resource_specification.num_nodes ${nodes} is more than a block of this endpoint can have (nodes_per_block ${this.maxNodesPerBlock})`,
          ),
        });
        continue;
      }
      if (!this.demand.has(t.id)) {
        this.demand.set(t.id, nodes);
        this.total += nodes;
      }
      accepted.push(t);
    }
    return { accepted, refused };
  }

  /** Results are in: their tasks need no nodes any more. */
  finished(results: readonly ResultEnvelope[]): void {
    for (const r of results) {
      const n = this.demand.get(r.id);
      if (n === undefined) continue;
      this.demand.delete(r.id);
      this.total -= n;
    }
  }

  /**
   * The engine as the strategy should see it in MPI mode: the backlog is the node demand of every unfinished
   * task and a block's workers are its nodes (the strategy runs with workers_per_node 1), so blocks are sized
   * by nodes, bounded by max_blocks × nodes_per_block as always.
   */
  nodeView(engine: EngineView): EngineView {
    return {
      backlog: () => this.total,
      loadByBlock: () => {
        const loads = new Map<string, BlockLoad>();
        // Busy nodes are already in the backlog (running tasks count in the demand).
        for (const [id, l] of engine.loadByBlock()) loads.set(id, { ...l, busyWorkers: 0, idleSinceMs: this.total > 0 ? null : l.idleSinceMs });
        return loads;
      },
      holdBlock: (id) => engine.holdBlock(id),
      releaseBlock: (id) => engine.releaseBlock(id),
      drainBlock: (id) => engine.drainBlock(id),
    };
  }
}
