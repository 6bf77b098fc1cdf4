/**
 * A node that vanishes mid-task on the real Slurm test cluster: the block runs with `--no-kill` (Slurm keeps
 * the job when one of its nodes fails, as an MPI block should), a 2-node MPI task runs on n2,n3 beside a
 * 1-node task on n1, and n3 is marked DOWN (what slurmctld does to a node that stops answering; Slurm then
 * takes it out of the job). The MPI
 * task fails with MPINodeLost naming n3, status shows n3 lost, the manager drains (the n1 task finishes,
 * the task waiting for all three nodes is not placed there) and says bye naming n3, and the strategy's next
 * block runs the waiting task.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
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

const run = promisify(execFile);
const OMPI_FLAGS = '--mca btl self,tcp --mca oob_tcp_if_include lo --mca btl_tcp_if_include lo --oversubscribe --mca pml ob1 --mca osc ^ucx';
const REASON = 'funcx-test-vanish';

let engine: Engine;
const results = new Map<string, ResultEnvelope>();
const byes: string[] = [];
let downed: string | undefined;

function task(id: string, body: TaskBody, spec: ResourceSpecification): TaskEnvelope {
  return { id, payload: encodeTask({ ...body, resources: checkResourceSpec(spec) }) };
}

function result(id: string, what: string): Promise<ResultEnvelope> {
  return untilValue(what, () => results.get(id), { timeoutMs: 60_000 }) as Promise<ResultEnvelope>;
}

function stdout(r: ResultEnvelope): string {
  const o = decodeOutcome(r.payload);
  if (!o.ok) assert.fail(`task ${r.id} failed: ${o.error.type}: ${o.error.message}`);
  return (o.value as ShellResult).stdout;
}

async function resume(node: string): Promise<void> {
  await run('scontrol', ['update', `nodename=${node}`, 'state=resume']).catch(() => undefined);
  // A node that was DOWN comes back IDLE once its slurmd registers again.
  await untilValue(`${node} to be usable again`, async () => {
    const { stdout: s } = await run('sinfo', ['-h', '-n', node, '-o', '%T']);
    return /^(idle|mixed|allocated)$/.test(s.trim()) ? true : undefined;
  }, { timeoutMs: 30_000 });
}

before(async () => {
  await ensureSlurm();
  await ensureMpi();
  const dir = mkdtempSync(join(tmpdir(), 'funcx-mpiloss-'));
  const config = new Config({
    engine: {
      mode: 'mpi', mpi_launcher: 'mpirun', mpi_launcher_overrides: OMPI_FLAGS,
      heartbeat_period: 1, heartbeat_threshold: 10, address: '127.0.0.1',
    },
    provider: new SlurmProvider({
      partition: 'debug', nodes_per_block: 3, walltime: '00:10:00', max_blocks: 1, launcher: new SimpleLauncher(),
      // Unpaced (polite polling is tested in status-pacer.test): states are seen at each strategy round.
      max_status_rate: Infinity,
      scheduler_options: '#SBATCH --no-kill',
      worker_init: 'export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1',
      channel: new LocalChannel({ script_dir: join(dir, 'submit_scripts') }),
    }),
    strategy: { period: 1, max_idletime: 30, walltime_margin: 5 },
  });
  engine = new Engine({ config, name: 'mpiloss', keysDir: join(dir, 'keys'), log: createLogger('mpi-loss', 'warn') });
  engine.onResults = (rs) => rs.forEach((r) => results.set(r.id, r));
  engine.interchange.on('manager-gone', (_m, reason) => byes.push(reason));
  await engine.start();
});

after(async () => {
  await engine?.stop({ graceMs: 0 });
  if (downed) await resume(downed);
});

test('a node marked down mid-task fails the task naming it, the block drains and the next block runs the waiting task', async () => {
  // n1 (the batch host, where the manager runs) gets a plain 1-node task; the MPI task gets n2,n3.
  const small = task('small', { kind: 'shell', command: 'echo "job $SLURM_JOB_ID"; sleep 10' }, { num_nodes: 1 });
  const big = task('big', { kind: 'mpi', command: `${MPI_HELLO} 60`, ranks: 2 }, { num_nodes: 2, ranks_per_node: 1 });
  const whole = task('whole', { kind: 'shell', command: 'echo "job $SLURM_JOB_ID nodes $FUNCX_MPI_NODES"' }, { num_nodes: 3 });
  engine.submitMany([small, big, whole]);
  const block = await untilValue('both tasks to run, on n1 and on n2,n3', () => {
    const b = engine.status().mpiBlocks?.[0];
    const on = (id: string) => b?.nodes.filter((n) => n.task === id).map((n) => n.node).join(',');
    return b && on('small') === 'n1' && on('big') === 'n2,n3' ? b : undefined;
  });
  assert.ok(block);
  downed = 'n3';
  await run('scontrol', ['update', 'nodename=n3', 'state=down', `reason=${REASON}`]);

  const r = await result('big', 'the MPI task on the vanished node');
  assert.equal(r.failed, true);
  const o = decodeOutcome(r.payload);
  assert.ok(!o.ok);
  assert.equal(o.error.type, 'MPINodeLost', o.error.message);
  // Slurm excises n3 from the --no-kill job at once; the node itself may already be back (ReturnToService=2
  // and a live slurmd) by the time the probe asks, so the job's node list is what names it.
  assert.match(o.error.message, /^MPI task big on nodes n2,n3 failed: node n3 \([^)]*no longer in Slurm job \d+'s node list\) vanished from the block; the block is drained/);
  // Status shows the lost node while the block drains (small still runs on n1).
  const lostView = await untilValue('status to show n3 lost', () => engine.status().mpiBlocks?.[0]?.nodes.find((n) => n.node === 'n3' && n.lost));
  assert.match(lostView!.lost!, /no longer in Slurm job/);

  const firstJob = /^job (\d+)$/m.exec(stdout(await result('small', 'the n1 task, finishing while the block drains')))?.[1];
  assert.ok(firstJob);
  await untilValue('the manager to say bye naming n3', () => byes.find((b) => /node\(s\) n3 .*vanished/.test(b)));
  await resume('n3');
  downed = undefined;
  const out = stdout(await result('whole', 'the 3-node task, on the next block'));
  const m = /^job (\d+) nodes (\S+)$/m.exec(out);
  assert.ok(m, out);
  assert.notEqual(m[1], firstJob, 'it ran in a new block, not on the drained one');
  assert.equal(m[2], 'n1,n2,n3');
});
