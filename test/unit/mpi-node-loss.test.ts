/**
 * Nodes that vanish from an MPI block: the Slurm probe's parsers on scontrol's text, the packer never handing
 * out a lost node, and the gate turning a failure on a vanished node into MPINodeLost naming it, closing (no
 * new placement, waiting tasks dropped for the interchange to retry) and asking the manager to drain.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodePacker } from '../../src/worker/mpi/node-packer.js';
import { MpiGate } from '../../src/worker/mpi/mpi-gate.js';
import { parseScontrolJobNodes, parseScontrolNodes, slurmNodeProbe, slurmStateIsGone, nodeProbeFromEnv, type NodeProbe } from '../../src/worker/mpi/node-probe.js';
import { decodeOutcome, encodeTask, errorOutcome } from '../../src/protocol/payload.js';
import { checkResourceSpec } from '../../src/protocol/resource-spec.js';
import type { ResultEnvelope, TaskEnvelope } from '../../src/protocol/messages.js';
import { until } from '../helpers/wait.js';

const NODE_TEXT = [
  'NodeName=n1 Arch=x86_64 CoresPerSocket=1  CPUAlloc=1 CPUEfctv=2 CPUTot=2 NodeAddr=127.0.0.1 State=MIXED ThreadsPerCore=1 Partitions=debug  BootTime=2026-12-02T12:29:10',
  'NodeName=n2 Arch=x86_64 CoresPerSocket=1  CPUAlloc=0 CPUEfctv=2 CPUTot=2 NodeAddr=127.0.0.1 State=DOWN+NOT_RESPONDING ThreadsPerCore=1 Partitions=debug  Reason=rack 4 power loss [root@2026-12-02T16:40:00]',
  'NodeName=n3 Arch=x86_64 State=IDLE* ThreadsPerCore=1',
  'NodeName=n4 Arch=x86_64 State=ALLOCATED+DRAIN ThreadsPerCore=1 Reason=kernel update [admin@2026-12-02T10:00:00]',
].join('\n');

test('scontrol show node -o: states and reasons; down, not responding and failed nodes are gone, drained busy ones are not', () => {
  const m = parseScontrolNodes(NODE_TEXT);
  assert.deepEqual(m.get('n1'), { state: 'MIXED' });
  assert.deepEqual(m.get('n2'), { state: 'DOWN+NOT_RESPONDING', reason: 'rack 4 power loss' });
  assert.deepEqual(m.get('n4'), { state: 'ALLOCATED+DRAIN', reason: 'kernel update' });
  assert.equal(slurmStateIsGone('MIXED'), false);
  assert.equal(slurmStateIsGone('ALLOCATED+DRAIN'), false, 'a drain lets running work finish: not gone');
  assert.equal(slurmStateIsGone('DOWN+NOT_RESPONDING'), true);
  assert.equal(slurmStateIsGone('DOWN'), true);
  assert.equal(slurmStateIsGone('IDLE*'), true, 'sinfo-style * means not responding');
  assert.equal(slurmStateIsGone('MIXED+FAIL'), true);
  assert.equal(slurmStateIsGone('IDLE+POWERED_DOWN'), true);
});

test('scontrol show job -o: the job\'s current node list, not ReqNodeList or BatchHost', () => {
  const text = 'JobId=181 JobName=x ReqNodeList=(null) ExcNodeList=(null) NodeList=n[1,3] BatchHost=n1 NumNodes=2';
  assert.deepEqual(parseScontrolJobNodes(text), ['n1', 'n3']);
  assert.equal(parseScontrolJobNodes('JobId=181 ReqNodeList=n[1-3] NodeList=(null)'), undefined);
});

test('the Slurm probe names nodes down or gone from the job, and declares nothing gone when scontrol fails', async () => {
  const calls: string[] = [];
  const probe = slurmNodeProbe('181', {
    run: async (file, args) => {
      calls.push(`${file} ${args.join(' ')}`);
      return args[1] === 'job' ? 'JobId=181 NodeList=n[1,3-4] BatchHost=n1' : NODE_TEXT;
    },
  });
  const gone = await probe(['n1', 'n2', 'n3', 'n4']);
  assert.deepEqual(calls.sort(), ['scontrol show job -o 181', 'scontrol show node -o n1,n2,n3,n4']);
  assert.deepEqual([...gone.keys()], ['n2', 'n3']);
  assert.equal(gone.get('n2'), 'Slurm node state DOWN+NOT_RESPONDING, reason "rack 4 power loss"; no longer in Slurm job 181\'s node list');
  assert.equal(gone.get('n3'), 'Slurm node state IDLE*');
  const errors: string[] = [];
  const broken = slurmNodeProbe('181', { run: async () => { throw new Error('slurm_load_jobs error: Socket timed out'); }, onError: (e) => errors.push(e.message) });
  assert.equal((await broken(['n1'])).size, 0);
  assert.match(errors[0], /Socket timed out/);
  assert.ok(nodeProbeFromEnv({ SLURM_JOB_ID: '181' }));
  assert.equal(nodeProbeFromEnv({ PBS_NODEFILE: '/x' }), undefined, 'no probe outside Slurm');
  assert.equal(nodeProbeFromEnv({ SLURM_JOB_ID: '1; rm -rf /' }), undefined, 'a job id is digits');
});

test('the packer never hands out a lost node, and a task holding one keeps it until released', () => {
  const p = new NodePacker(['n1', 'n2', 'n3']);
  p.add({ id: 'a', nodes: 2, item: 'a' });
  assert.deepEqual(p.schedule(0).map((s) => s.nodes), [['n1', 'n2']]);
  p.markLost(new Map([['n2', 'down'], ['n3', 'down'], ['zz', 'not ours']]));
  assert.deepEqual(p.snapshot().nodes, [
    { node: 'n1', task: 'a' },
    { node: 'n2', task: 'a', lost: 'down' },
    { node: 'n3', task: null, lost: 'down' },
  ]);
  p.add({ id: 'b', nodes: 1, item: 'b' });
  assert.deepEqual(p.schedule(1), [], 'n3 is free but lost: b waits');
  assert.deepEqual(p.release('a'), ['n1', 'n2']);
  assert.deepEqual(p.schedule(2).map((s) => `${s.task.id}:${s.nodes}`), ['b:n1'], 'only n1 came back');
  assert.deepEqual([...p.lostNodes.keys()], ['n2', 'n3']);
});

// ---- the gate ----------------------------------------------------------------------------------------------

const mpiTask = (id: string, num_nodes: number): TaskEnvelope => ({
  id,
  payload: encodeTask({ kind: 'mpi', command: './app', ranks: num_nodes, resources: checkResourceSpec({ num_nodes, ranks_per_node: 1 }) }),
});
const failed = (id: string, message = 'exited with code 1'): ResultEnvelope => ({ id, failed: true, payload: errorOutcome('MPITaskFailed', message), ms: 10 });
const ok = (id: string): ResultEnvelope => ({ id, failed: false, payload: new Uint8Array(), ms: 10 });

/** A probe the test answers by hand: each call waits for `answer`. */
function manualProbe() {
  const asked: string[][] = [];
  const pending: Array<(gone: Map<string, string>) => void> = [];
  const probe: NodeProbe = (nodes) => {
    asked.push([...nodes]);
    return new Promise((resolve) => pending.push(resolve));
  };
  return { probe, asked, answer: (gone: Record<string, string> = {}) => pending.shift()!(new Map(Object.entries(gone))) };
}

function gateWith(probe: NodeProbe | undefined) {
  const ready: string[] = [];
  const late: ResultEnvelope[] = [];
  const lost: Array<Map<string, string>> = [];
  const g = new MpiGate({
    nodes: ['n1', 'n2', 'n3'], launcher: 'mpirun', endsAt: null, probe,
    onReady: (t) => ready.push(...t.map((x) => x.id)), onRefused: () => assert.fail('nothing refused here'),
    onLate: (r) => late.push(...r), onNodesLost: (g) => lost.push(new Map(g)),
  });
  return { g, ready, late, lost };
}

test('a task failing on a vanished node fails with MPINodeLost naming it; the gate closes and drops waiting tasks', async () => {
  const p = manualProbe();
  const { g, ready, late, lost } = gateWith(p.probe);
  try {
    g.add([mpiTask('a', 2), mpiTask('b', 1), mpiTask('c', 3), mpiTask('d', 1)]);
    assert.deepEqual(ready, ['a', 'b']);
    // a fails: its result is held (not sent now) and its nodes stay held while the probe looks at them.
    assert.deepEqual(g.done([failed('a', 'exited with code 255: ORTE has lost communication with a remote daemon')]), []);
    assert.deepEqual(p.asked, [['n1', 'n2']]);
    assert.equal(g.pending, 4, 'b runs, c and d wait, a waits for the probe');
    assert.deepEqual(g.snapshot().nodes.map((n) => n.task), ['a', 'a', 'b']);
    p.answer({ n2: 'Slurm node state DOWN+NOT_RESPONDING' });
    await until('the held result to come back', () => late.length > 0);
    assert.equal(late.length, 1);
    const o = decodeOutcome(late[0].payload);
    assert.ok(!o.ok);
    assert.equal(o.error.type, 'MPINodeLost');
    assert.equal(
      o.error.message,
      'MPI task a on nodes n1,n2 failed: node n2 (Slurm node state DOWN+NOT_RESPONDING) vanished from the block; the block is drained and will be replaced\n' +
        'MPITaskFailed: exited with code 255: ORTE has lost communication with a remote daemon',
    );
    assert.deepEqual(lost.map((m) => [...m]), [[['n2', 'Slurm node state DOWN+NOT_RESPONDING']]]);
    assert.equal(g.isClosed, true);
    assert.deepEqual(ready, ['a', 'b'], 'nothing placed after the loss, though n1 is free and d needs one node');
    assert.equal(g.pending, 1, 'only b, still running; c and d were dropped (the interchange retries them at bye)');
    assert.deepEqual(g.snapshot().nodes, [{ node: 'n1', task: null }, { node: 'n2', task: null, lost: 'Slurm node state DOWN+NOT_RESPONDING' }, { node: 'n3', task: 'b' }]);
    g.add([mpiTask('e', 1)]);
    assert.deepEqual(ready, ['a', 'b'], 'a closed gate takes nothing new');
    assert.deepEqual(g.done([ok('b')]), [ok('b')]);
    assert.equal(g.pending, 0, 'drained');
  } finally {
    g.stop();
  }
});

test('a task failing on healthy nodes stays its own failure and its nodes come back after the probe', async () => {
  const p = manualProbe();
  const { g, ready, late, lost } = gateWith(p.probe);
  try {
    g.add([mpiTask('a', 3), mpiTask('b', 3)]);
    assert.deepEqual(g.done([failed('a')]), []);
    assert.deepEqual(ready, ['a'], 'b does not get a\'s nodes before the probe answers');
    p.answer({});
    await until('the held result to come back', () => late.length > 0);
    assert.equal(late.length, 1);
    const o = decodeOutcome(late[0].payload);
    assert.ok(!o.ok);
    assert.equal(o.error.type, 'MPITaskFailed');
    assert.deepEqual(lost, []);
    assert.deepEqual(ready, ['a', 'b']);
    // A success passes straight through, no probe.
    assert.deepEqual(g.done([ok('b')]), [ok('b')]);
    assert.equal(p.asked.length, 1);
  } finally {
    g.stop();
  }
});

test('the periodic check finds a free node gone: nothing is placed on it and the block drains', async () => {
  const p = manualProbe();
  const { g, ready, lost } = gateWith(p.probe);
  try {
    g.add([mpiTask('a', 1)]);
    const check = g.checkNodes();
    assert.deepEqual(p.asked, [['n1', 'n2', 'n3']]);
    p.answer({ n3: 'no longer in Slurm job 9\'s node list' });
    await check;
    assert.equal(lost.length, 1);
    g.add([mpiTask('b', 1)]);
    assert.deepEqual(ready, ['a']);
    assert.equal(g.isClosed, true);
    assert.deepEqual(g.snapshot().nodes.map((n) => n.lost ?? n.task), ['a', null, 'no longer in Slurm job 9\'s node list']);
  } finally {
    g.stop();
  }
});

test('without a probe a failed task is sent at once as it was', () => {
  const { g, ready } = gateWith(undefined);
  g.add([mpiTask('a', 2)]);
  assert.deepEqual(ready, ['a']);
  const r = failed('a');
  assert.deepEqual(g.done([r]), [r]);
  assert.equal(g.pending, 0);
});
