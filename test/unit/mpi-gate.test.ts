import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MpiGate } from '../../src/worker/mpi/mpi-gate.js';
import { decodeOutcome, decodeTask, encodeTask, type MpiTaskBody } from '../../src/protocol/payload.js';
import { checkResourceSpec } from '../../src/protocol/resource-spec.js';
import type { ResultEnvelope, TaskEnvelope } from '../../src/protocol/messages.js';
import { execute } from '../../src/worker/execute.js';

const mpi = (id: string, num_nodes: number, command = './app'): TaskEnvelope => ({
  id,
  payload: encodeTask({ kind: 'mpi', command, ranks: num_nodes * 2, resources: checkResourceSpec({ num_nodes, ranks_per_node: 2 }) }),
});

function gate(nodes = ['n1', 'n2', 'n3']) {
  const ready: TaskEnvelope[] = [];
  const refused: ResultEnvelope[] = [];
  const g = new MpiGate({ nodes, launcher: 'srun', endsAt: null, now: () => 1234, onReady: (t) => ready.push(...t), onRefused: (r) => refused.push(...r) });
  return { g, ready, refused };
}

test('the gate places tasks on disjoint nodes with their prefix, holds the rest, and frees nodes on results', () => {
  const { g, ready, refused } = gate();
  g.add([mpi('a', 2), mpi('b', 2), mpi('c', 1), mpi('big', 4)]);
  assert.deepEqual(refused.map((r) => r.id), ['big']);
  const o = decodeOutcome(refused[0].payload);
  assert.ok(!o.ok);
  assert.equal(o.error.type, 'ResourceUnavailable');
  assert.match(o.error.message, /num_nodes 4, but this MPI block has 3 nodes \(n1,n2,n3\)/);
  // c passes the waiting b on the node b will not need (b needs 2 of the 3 once a ends).
  assert.deepEqual(ready.map((t) => t.id), ['a', 'c']);
  const placed = decodeTask(ready[0].payload) as MpiTaskBody;
  assert.deepEqual(placed.placement, { nodes: ['n1', 'n2'], prefix: 'srun --nodes=2 --ntasks=4 --ntasks-per-node=2 --nodelist=n1,n2 --exact --mpi=pmix', at: 1234 });
  assert.equal(g.pending, 3, 'a and c run; b waits');
  g.done([{ id: 'a', failed: false, payload: new Uint8Array(), ms: 1000 }]);
  assert.deepEqual(ready.map((t) => t.id), ['a', 'c', 'b']);
  assert.deepEqual(g.snapshot().nodes, [{ node: 'n1', task: 'b' }, { node: 'n2', task: 'b' }, { node: 'n3', task: 'c' }]);
});

test('a placed MPI command runs under its prefix; a non-zero exit fails the task naming its nodes', async () => {
  const body = {
    kind: 'mpi' as const, command: 'x', ranks: 2, resources: checkResourceSpec({ num_nodes: 2 }),
    placement: { nodes: ['n1', 'n2'], prefix: 'echo "$FUNCX_MPI_NODES $FUNCX_MPI_NUM_RANKS" && sh -c' },
  };
  const ok = await execute({ ...body, command: "'echo ran'" }, 'unused');
  assert.ok(ok.ok);
  assert.equal((ok.value as { stdout: string }).stdout, 'n1,n2 2\nran\n');
  const bad = await execute({ ...body, command: "'echo oops >&2; exit 3'" }, 'unused');
  assert.ok(!bad.ok);
  assert.equal(bad.error.type, 'MPITaskFailed');
  assert.match(bad.error.message, /^MPI task on nodes n1,n2 \(2 ranks\) exited with code 3: .*\nstderr: oops/);
});
