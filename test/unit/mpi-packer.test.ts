import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodePacker } from '../../src/worker/mpi/node-packer.js';
import { mpiPrefix } from '../../src/worker/mpi/prefix.js';
import { checkResourceSpec } from '../../src/protocol/resource-spec.js';
import { MPIFunction, withResources, ShellFunction } from '../../src/sdk/functions.js';

const task = (id: string, nodes: number, estimateMs?: number) => ({ id, nodes, estimateMs, item: id });
const ids = (starts: Array<{ task: { id: string }; nodes: string[] }>) => starts.map((s) => `${s.task.id}:${s.nodes.join(',')}`);

test('two 1-node tasks and one 2-node task share a 3-node block on disjoint nodes', () => {
  const p = new NodePacker(['n1', 'n2', 'n3']);
  p.add(task('a', 1));
  p.add(task('b', 2));
  p.add(task('c', 1));
  assert.deepEqual(ids(p.schedule(0)), ['a:n1', 'b:n2,n3']);
  assert.equal(p.waitingCount, 1);
  assert.deepEqual(p.release('b'), ['n2', 'n3']);
  assert.deepEqual(ids(p.schedule(1)), ['c:n2']);
  assert.deepEqual(p.snapshot().nodes, [{ node: 'n1', task: 'a' }, { node: 'n2', task: 'c' }, { node: 'n3', task: null }]);
});

test('tasks wait for free nodes and start as nodes come back', () => {
  const p = new NodePacker(['n1', 'n2']);
  p.add(task('a', 2));
  p.add(task('b', 2));
  assert.deepEqual(ids(p.schedule(0)), ['a:n1,n2']);
  assert.deepEqual(ids(p.schedule(5)), []);
  p.release('a');
  assert.deepEqual(ids(p.schedule(10)), ['b:n1,n2']);
});

test('backfill: a short small task passes a waiting large one only if it ends before the reservation', () => {
  const p = new NodePacker(['n1', 'n2', 'n3']);
  p.add(task('long', 2, 10_000)); // runs 0..10s on n1,n2
  assert.equal(p.schedule(0).length, 1);
  p.add(task('big', 3, 5_000)); // head: needs all 3, reservation at 10s
  p.add(task('short', 1, 4_000)); // ends at 4s < 10s: may pass
  p.add(task('slow', 1, 20_000)); // would end at 20s > 10s: must not pass
  assert.deepEqual(ids(p.schedule(0)), ['short:n3']);
  p.release('short');
  assert.deepEqual(ids(p.schedule(4_000)), [], 'slow would delay big, so it waits');
  p.release('long');
  assert.deepEqual(ids(p.schedule(10_000)), ['big:n1,n2,n3']);
  p.release('big');
  assert.deepEqual(ids(p.schedule(15_000)), ['slow:n1']);
});

test('no starvation: a stream of small tasks with unknown durations never takes the large task\'s nodes', () => {
  const p = new NodePacker(['n1', 'n2', 'n3']);
  p.add(task('s1', 1));
  p.add(task('s2', 1));
  assert.equal(p.schedule(0).length, 2);
  p.add(task('big', 3));
  for (let i = 0; i < 5; i++) p.add(task(`more${i}`, 1));
  // n3 is free but the big task's reservation cannot be computed: nothing unknown passes it.
  assert.deepEqual(ids(p.schedule(1)), []);
  p.release('s1');
  assert.deepEqual(ids(p.schedule(2)), []);
  p.release('s2');
  assert.deepEqual(ids(p.schedule(3)), ['big:n1,n2,n3']);
});

test('extra nodes: a task of unknown length may use nodes the waiting head will not need', () => {
  const p = new NodePacker(['n1', 'n2', 'n3', 'n4']);
  p.add(task('a', 3, 10_000));
  assert.equal(p.schedule(0).length, 1);
  p.add(task('head', 2)); // at 10s 4 nodes are free, head needs 2: 2 extra
  p.add(task('x', 1));
  assert.deepEqual(ids(p.schedule(0)), ['x:n4']);
});

test('walltime: a task whose learned duration outlasts the block is not started there', () => {
  const p = new NodePacker(['n1'], 10_000);
  p.add(task('too-long', 1, 20_000));
  p.add(task('fits', 1, 1_000));
  assert.deepEqual(ids(p.schedule(0)), ['fits:n1']);
  assert.equal(p.waitingCount, 1);
});

test('a task larger than the block is refused by the packer', () => {
  const p = new NodePacker(['n1', 'n2']);
  assert.throws(() => p.add(task('x', 3)), /asks for 3 nodes; this block has 2/);
});

test('prefixes for every launcher', () => {
  const spec = checkResourceSpec({ num_nodes: 2, ranks_per_node: 2 });
  assert.equal(mpiPrefix('srun', ['n1', 'n2'], spec), 'srun --nodes=2 --ntasks=4 --ntasks-per-node=2 --nodelist=n1,n2 --exact --mpi=pmix');
  assert.equal(mpiPrefix('mpiexec', ['n1', 'n2'], spec), 'mpiexec -n 4 -ppn 2 -hosts n1,n2');
  assert.equal(mpiPrefix('mpirun', ['n1', 'n2'], spec, '--mca btl self,tcp'), 'mpirun -np 4 --host n1:2,n2:2 --mca btl self,tcp');
  assert.equal(mpiPrefix('aprun', ['nid001', 'nid002'], spec), 'aprun -n 4 -N 2 -L nid001,nid002');
  assert.match(mpiPrefix('jsrun', ['a', 'b'], spec), /^jsrun --nrs 4 --rs_per_host 2/);
  assert.throws(() => mpiPrefix('srun', ['n1;rm -rf /', 'n2'], spec), /not a plain host name/);
  assert.throws(() => mpiPrefix('srun', ['n1'], spec), /1 nodes given for num_nodes 2/);
});

test('resource specifications: derived fields and errors naming the field', () => {
  assert.deepEqual(checkResourceSpec({ num_nodes: 2, ranks_per_node: 4 }), { num_nodes: 2, ranks_per_node: 4, num_ranks: 8 });
  assert.deepEqual(checkResourceSpec({ num_ranks: 6, num_nodes: 2 }), { num_nodes: 2, ranks_per_node: 3, num_ranks: 6 });
  assert.deepEqual(checkResourceSpec({}), { num_nodes: 1, ranks_per_node: 1, num_ranks: 1 });
  assert.throws(() => checkResourceSpec({ num_nodes: 0 }, 'tasks[0].resources'), /^ResourceSpecError: tasks\[0\]\.resources\.num_nodes: must be a whole number/);
  assert.throws(() => checkResourceSpec({ num_nodes: 1.5 }), /resource_specification\.num_nodes/);
  assert.throws(() => checkResourceSpec({ nodes: 2 }), /resource_specification\.nodes: unknown field/);
  assert.throws(() => checkResourceSpec({ num_nodes: 2, ranks_per_node: 1, num_ranks: 3 }), /num_ranks: 3 ranks do not fit/);
  assert.throws(() => checkResourceSpec({ num_nodes: 3, num_ranks: 2 }), /num_ranks: 2 ranks leave some/);
  assert.throws(() => checkResourceSpec('2 nodes'), /must be an object/);
  assert.throws(() => MPIFunction('./app', { resources: { num_nodes: -1 } }), /MPIFunction resources\.num_nodes/);
  assert.equal(MPIFunction('./app', { resources: { num_nodes: 2, ranks_per_node: 2 } }).ranks, 4);
  assert.equal(MPIFunction('./app', { ranks: 3 }).resources?.num_ranks, 3);
  assert.deepEqual(withResources('fn-id', { num_nodes: 2 }).resources, { num_nodes: 2, ranks_per_node: 1, num_ranks: 2 });
  assert.throws(() => withResources(ShellFunction('x'), { ranks_per_node: 0 }), /resources\.ranks_per_node/);
});
