import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MpiAdmission } from '../../src/endpoint/mpi/mpi-admission.js';
import { decide, type BlockLoad, type EngineView } from '../../src/endpoint/engine/strategy.js';
import { resolveStrategyOptions } from '../../src/config/strategy-options.js';
import { decodeOutcome, encodeTask } from '../../src/protocol/payload.js';
import { checkResourceSpec } from '../../src/protocol/resource-spec.js';
import type { TaskEnvelope } from '../../src/protocol/messages.js';

let n = 0;
const mpi = (nodes: number): TaskEnvelope => ({
  id: `t${++n}`,
  payload: encodeTask({ kind: 'mpi', command: './app', ranks: nodes, resources: checkResourceSpec({ num_nodes: nodes }) }),
});

const engine = (loads: Map<string, BlockLoad> = new Map()): EngineView => ({
  backlog: () => 99, loadByBlock: () => loads, holdBlock() {}, releaseBlock() {}, drainBlock() {},
});

test('admission refuses a task larger than any block at once and counts node demand of the others', () => {
  const a = new MpiAdmission(3);
  const big = mpi(4);
  const { accepted, refused } = a.admit([mpi(1), mpi(2), big, mpi(3)]);
  assert.equal(accepted.length, 3);
  assert.equal(refused.length, 1);
  assert.equal(refused[0].id, big.id);
  const o = decodeOutcome(refused[0].payload);
  assert.ok(!o.ok);
  assert.match(o.error.message, /num_nodes 4 is more than a block of this endpoint can have \(nodes_per_block 3\)/);
  assert.equal(a.nodeDemand, 6);
  a.finished([{ id: accepted[1].id, failed: false, payload: new Uint8Array() }]);
  assert.equal(a.nodeDemand, 4);
  a.finished([{ id: accepted[1].id, failed: false, payload: new Uint8Array() }]);
  assert.equal(a.nodeDemand, 4, 'a result counted once');
});

test('the strategy sizes MPI blocks by node demand, bounded by max_blocks × nodes_per_block', () => {
  const a = new MpiAdmission(3);
  a.admit([mpi(1), mpi(2), mpi(3)]); // 6 nodes
  const view = a.nodeView(engine());
  const input = (maxBlocks: number) => ({
    now: 0, backlog: view.backlog(), firstTick: false, gate: { ok: true as const }, blocks: [], load: view.loadByBlock(),
    options: resolveStrategyOptions({ workers_per_node: 1, nodes_per_block: 3, max_blocks: maxBlocks }),
  });
  assert.deepEqual(decide(input(4)).submit.map((s) => s.nodes), [3, 3], '6 nodes of demand: two 3-node blocks, not four');
  const capped = decide(input(1));
  assert.deepEqual(capped.submit.map((s) => s.nodes), [3]);
  assert.match(capped.reason, /capped by max_blocks 1/);
});

test('running MPI tasks keep their block: no scale-in while node demand remains', () => {
  const a = new MpiAdmission(3);
  const [t] = a.admit([mpi(2)]).accepted;
  // The manager reports no busy slot in the HTEX sense; node demand still holds the block.
  const idle: BlockLoad = { managers: 1, workers: 3, busyWorkers: 0, idleSinceMs: 0 };
  const view = a.nodeView(engine(new Map([['b1', idle]])));
  const block = {
    blockId: 'b1', jobId: '1', state: 'running' as const, submittedAt: 0, runningSince: 0, endsAt: null, nodes: 3, walltimeS: Infinity,
    managerRegistered: true, phase: 'serving' as const, drainingSince: null,
  };
  const options = resolveStrategyOptions({ workers_per_node: 1, nodes_per_block: 3, max_blocks: 1, max_idletime: 1 });
  const at = (now: number) => decide({ now, backlog: view.backlog(), firstTick: false, gate: { ok: true }, blocks: [block], load: view.loadByBlock(), options });
  const busy = at(1_000_000);
  assert.deepEqual([busy.hold, busy.submit], [[], []]);
  a.finished([{ id: t.id, failed: false, payload: new Uint8Array() }]);
  assert.deepEqual(at(1_000_000).hold, ['b1'], 'idle once the demand is gone');
});
