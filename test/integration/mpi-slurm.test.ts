/**
 * The MPI engine mode on the real Slurm test cluster with Debian's Open MPI: one manager per 3-node block
 * packs MPI tasks onto disjoint emulated nodes; mpirun (started under FUNCX_MPI_PREFIX) spreads ranks over
 * them. `srun --mpi=pmix` cannot run here (three slurmd on one host share PMIx sockets): the srun prefix is
 * checked as text in the unit tests and a real multi-node non-MPI step runs on a task's nodes below.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureMpi, ensureSlurm, MPI_HELLO } from './cluster-setup.js';
import { Config } from '../../src/config/config.js';
import { SlurmProvider } from '../../providers/slurm.js';
import { LocalChannel } from '../../providers/channels/local.js';
import { SimpleLauncher } from '../../launchers/simple.js';
import { Engine } from '../../src/endpoint/engine/engine.js';
import { createLogger } from '../../src/logger.js';
import { decodeOutcome, encodeTask, type ShellResult, type TaskBody } from '../../src/protocol/payload.js';
import { checkResourceSpec, type ResourceSpecification } from '../../src/protocol/resource-spec.js';
import type { ResultEnvelope, TaskEnvelope } from '../../src/protocol/messages.js';
import { untilValue } from '../helpers/wait.js';

// Open MPI on one host: TCP on loopback, root allowed, the emulated nodes' single slot oversubscribed.
const OMPI_FLAGS = '--mca btl self,tcp --mca oob_tcp_if_include lo --mca btl_tcp_if_include lo --oversubscribe';

let engine: Engine;
const results = new Map<string, ResultEnvelope>();
let counter = 0;

function task(body: TaskBody, spec: ResourceSpecification): TaskEnvelope {
  const resources = checkResourceSpec(spec);
  return { id: `mpi${++counter}`, payload: encodeTask({ ...body, resources }) };
}

function mpiTask(command: string, spec: ResourceSpecification): TaskEnvelope {
  return task({ kind: 'mpi', command, ranks: checkResourceSpec(spec).num_ranks }, spec);
}

function result(id: string, what: string): Promise<ResultEnvelope> {
  return untilValue(what, () => results.get(id), { timeoutMs: 120_000 }) as Promise<ResultEnvelope>;
}

interface Rank { rank: number; size: number; node: string; start: number }
function ranks(stdout: string): { ranks: Rank[]; end: number } {
  const out: Rank[] = [];
  let end = NaN;
  for (const line of stdout.split('\n')) {
    const m = /^rank (\d+) size (\d+) node (\S+) start (\d+)$/.exec(line);
    if (m) out.push({ rank: Number(m[1]), size: Number(m[2]), node: m[3], start: Number(m[4]) });
    const e = /^end (\d+)$/.exec(line);
    if (e) end = Number(e[1]);
  }
  return { ranks: out.sort((a, b) => a.rank - b.rank), end };
}

function value(r: ResultEnvelope): ShellResult {
  const o = decodeOutcome(r.payload);
  if (!o.ok) assert.fail(`task ${r.id} failed: ${o.error.type}: ${o.error.message}`);
  return o.value as ShellResult;
}

before(async () => {
  await ensureSlurm();
  await ensureMpi();
  const dir = mkdtempSync(join(tmpdir(), 'funcx-mpi-'));
  const config = new Config({
    engine: {
      mode: 'mpi', mpi_launcher: 'mpirun', mpi_launcher_overrides: OMPI_FLAGS,
      heartbeat_period: 1, heartbeat_threshold: 10, address: '127.0.0.1',
    },
    provider: new SlurmProvider({
      partition: 'debug',
      nodes_per_block: 3,
      walltime: '00:10:00',
      max_blocks: 1,
      launcher: new SimpleLauncher(),
      worker_init: 'export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1',
      channel: new LocalChannel({ script_dir: join(dir, 'submit_scripts') }),
    }),
    strategy: { period: 1, max_idletime: 30, walltime_margin: 5 },
  });
  engine = new Engine({ config, name: 'mpitest', keysDir: join(dir, 'keys'), log: createLogger('mpi-engine', 'warn') });
  engine.onResults = (rs) => rs.forEach((r) => results.set(r.id, r));
  await engine.start();
});

after(async () => {
  await engine?.stop({ graceMs: 0 });
});

test('a 4-node request on 3-node blocks fails at once, before any block exists', () => {
  const t = mpiTask(`${MPI_HELLO} 0`, { num_nodes: 4, ranks_per_node: 1 });
  engine.submitMany([t]);
  const r = results.get(t.id);
  assert.ok(r, 'the result is there as soon as submitMany returns');
  assert.equal(r.failed, true);
  const o = decodeOutcome(r.payload);
  assert.ok(!o.ok);
  assert.equal(o.error.type, 'ResourceUnavailable');
  assert.match(o.error.message, /num_nodes 4 is more than a block of this endpoint can have \(nodes_per_block 3\)/);
  assert.equal(engine.mpi?.nodeDemand, 0, 'the refused task adds no node demand');
});

test('a 2-node × 2-rank task and a 1-node task share one 3-node block at the same time, on disjoint nodes', async () => {
  const big = mpiTask(`${MPI_HELLO} 2`, { num_nodes: 2, ranks_per_node: 2 });
  const small = mpiTask(`${MPI_HELLO} 2`, { num_nodes: 1, ranks_per_node: 2 });
  engine.submitMany([big, small]);
  // Status shows which nodes run which task while they run.
  const running = await untilValue('status to show both tasks on the block\'s nodes', () => {
    const block = engine.status().mpiBlocks?.[0];
    const on = (id: string) => block?.nodes.filter((x) => x.task === id).length;
    return block && on(big.id) === 2 && on(small.id) === 1 ? block : undefined;
  });
  assert.deepEqual(running!.nodes.map((x) => x.node).sort(), ['n1', 'n2', 'n3']);
  const a = ranks(value(await result(big.id, 'the 2-node task')).stdout);
  const b = ranks(value(await result(small.id, 'the 1-node task')).stdout);
  assert.equal(a.ranks.length, 4);
  assert.ok(a.ranks.every((r) => r.size === 4), 'the 2-node task reports size 4');
  const aNodes = new Set(a.ranks.map((r) => r.node));
  assert.equal(aNodes.size, 2, `ranks on two distinct Slurm nodes: ${[...aNodes]}`);
  assert.equal(a.ranks[0].node, a.ranks[1].node, 'ranks 0 and 1 on one node');
  assert.equal(a.ranks[2].node, a.ranks[3].node, 'ranks 2 and 3 on the other');
  assert.equal(b.ranks.length, 2);
  const bNodes = new Set(b.ranks.map((r) => r.node));
  assert.equal(bNodes.size, 1);
  assert.ok(![...bNodes].some((n) => aNodes.has(n)), `disjoint nodes: ${[...aNodes]} vs ${[...bNodes]}`);
  assert.deepEqual([...aNodes, ...bNodes].sort(), ['n1', 'n2', 'n3']);
  // Both ran at once: each started before the other ended.
  const aStart = Math.min(...a.ranks.map((r) => r.start));
  const bStart = Math.min(...b.ranks.map((r) => r.start));
  assert.ok(aStart < b.end && bStart < a.end, `overlap: a ${aStart}..${a.end}, b ${bStart}..${b.end}`);
  await untilValue('status to show every node free again', () => engine.status().mpiBlocks?.[0]?.nodes.every((x) => x.task === null));
});

test('a task with a resource spec gets FUNCX_MPI_PREFIX and its nodes, and a real 2-node Slurm step runs on them', async () => {
  const t = task(
    { kind: 'shell', command: 'echo "prefix=$FUNCX_MPI_PREFIX"; srun --nodes=2 --ntasks=2 --nodelist="$FUNCX_MPI_NODES" printenv SLURMD_NODENAME | sort' },
    { num_nodes: 2, ranks_per_node: 1 },
  );
  engine.submitMany([t]);
  const out = value(await result(t.id, 'the shell task')).stdout.trim().split('\n');
  const m = /^prefix=mpirun -np 2 --host (n\d):1,(n\d):1 --mca btl self,tcp/.exec(out[0]);
  assert.ok(m, `prefix line: ${out[0]}`);
  assert.deepEqual(out.slice(1), [m[1], m[2]].sort(), 'the step ran once on each of the task\'s nodes');
});

test('a rank that dies ends the task with an error naming its nodes, and the nodes go back to the pool', async () => {
  const dying = mpiTask(`${MPI_HELLO} 30 1`, { num_nodes: 2, ranks_per_node: 1 });
  engine.submitMany([dying]);
  const r = await result(dying.id, 'the task whose rank 1 dies');
  assert.equal(r.failed, true);
  const o = decodeOutcome(r.payload);
  assert.ok(!o.ok);
  assert.equal(o.error.type, 'MPITaskFailed');
  assert.match(o.error.message, /^MPI task on nodes n\d,n\d \(2 ranks\) exited with code \d+/);
  // All three nodes are free again: a 3-node task runs.
  const all = mpiTask(`${MPI_HELLO} 0`, { num_nodes: 3, ranks_per_node: 1 });
  engine.submitMany([all]);
  const nodes = ranks(value(await result(all.id, 'the 3-node task after the failure')).stdout).ranks.map((x) => x.node);
  assert.deepEqual(nodes.sort(), ['n1', 'n2', 'n3']);
  await untilValue('node demand back to 0', () => engine.mpi?.nodeDemand === 0);
});
