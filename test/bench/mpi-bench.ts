/**
 * The MPI workload of issue 12 on the Slurm test cluster: 60 tasks of 1, 2 and 3 nodes (20 each, mixed),
 * 2 ranks per node, each the compiled test program sleeping 2 s after MPI_Init, on one endpoint in MPI mode
 * with 3-node blocks and max_blocks 1, launched with mpirun (srun --mpi=pmix cannot run with three slurmd on
 * one host).
 *
 * - mpi_makespan_s: submit → last result.
 * - mpi_node_utilisation: node-seconds held by tasks / node-seconds of the block from the first task start
 *   to the last result (work is waiting all that time).
 * - mpi_task_start_ms_p50: the manager giving the task its nodes (FUNCX_MPI_PLACED_AT) → its first rank
 *   running (after MPI_Init), from timestamps on the same host clock. Split into mpi_place_to_shell_ms_p50
 *   (ours: manager → worker → task shell) and mpi_launch_ms_p50 (Open MPI: mpirun, orted through srun,
 *   MPI_Init).
 *
 * Open MPI runs with the fast-start settings of test/fixtures/mpi/ompi-fast.ts (FUNCX_BENCH_OMPI=plain: the
 * plain flags of before, for comparison).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execSync } from 'node:child_process';
import { Config } from '../../src/config/config.js';
import { SlurmProvider } from '../../providers/slurm.js';
import { LocalChannel } from '../../providers/channels/local.js';
import { SimpleLauncher } from '../../launchers/simple.js';
import { Engine } from '../../src/endpoint/engine/engine.js';
import { createLogger } from '../../src/logger.js';
import { decodeOutcome, encodeTask, type ShellResult } from '../../src/protocol/payload.js';
import { checkResourceSpec } from '../../src/protocol/resource-spec.js';
import type { ResultEnvelope, TaskEnvelope } from '../../src/protocol/messages.js';
import { OMPI_FAST_ENV, OMPI_FAST_FLAGS, OMPI_LOOPBACK_FLAGS } from '../fixtures/mpi/ompi-fast.js';

const HELLO = '/opt/funcx-test/mpi-hello';
const plain = process.env.FUNCX_BENCH_OMPI === 'plain';
const OMPI_FLAGS = plain ? OMPI_LOOPBACK_FLAGS : `${OMPI_LOOPBACK_FLAGS} ${OMPI_FAST_FLAGS}`;
const OMPI_ENV = plain ? '' : ` ${OMPI_FAST_ENV}`;

export interface MpiBench {
  mpi_makespan_s: number;
  mpi_node_utilisation: number;
  mpi_task_start_ms_p50: number;
  mpi_place_to_shell_ms_p50: number;
  mpi_launch_ms_p50: number;
  mpi_ideal_makespan_s: number;
}

const p50 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function benchMpi(progress: (m: string) => void, count = 60): Promise<MpiBench> {
  execSync(`bash ${join(process.cwd(), 'test/cluster/start-mpi.sh')}`, { stdio: 'ignore' });
  const dir = mkdtempSync(join(tmpdir(), 'funcx-mpibench-'));
  const config = new Config({
    engine: { mode: 'mpi', mpi_launcher: 'mpirun', mpi_launcher_overrides: OMPI_FLAGS, heartbeat_period: 2, heartbeat_threshold: 20, address: '127.0.0.1' },
    provider: new SlurmProvider({
      partition: 'debug', nodes_per_block: 3, walltime: '00:30:00', max_blocks: 1, launcher: new SimpleLauncher(),
      worker_init: `export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1${OMPI_ENV}`,
      channel: new LocalChannel({ script_dir: join(dir, 'submit_scripts') }),
    }),
    strategy: { period: 1, max_idletime: 30, walltime_margin: 5 },
  });
  const engine = new Engine({ config, name: 'mpibench', keysDir: join(dir, 'keys'), log: createLogger('mpi-bench', 'warn') });
  const results = new Map<string, ResultEnvelope>();
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  engine.onResults = (rs) => {
    for (const r of rs) results.set(r.id, r);
    if (results.size >= count) done();
  };
  await engine.start();
  try {
    // Sizes 1, 2, 3 interleaved with a fixed shuffle: the same workload every run.
    const sizes = Array.from({ length: count }, (_, i) => (i * 7) % 3 + 1);
    const nodesOf = new Map<string, number>();
    const tasks: TaskEnvelope[] = sizes.map((n, i) => {
      const id = `mpi-bench-${i}`;
      nodesOf.set(id, n);
      const command = `echo "placed $FUNCX_MPI_PLACED_AT shell $(date +%s%3N)"; $FUNCX_MPI_PREFIX ${HELLO} 2`;
      return { id, payload: encodeTask({ kind: 'shell', command, resources: checkResourceSpec({ num_nodes: n, ranks_per_node: 2 }) }) };
    });
    progress(`mpi: ${count} tasks of 1-3 nodes × 2 ranks, 2 s each, on 3-node blocks`);
    const t0 = Date.now();
    engine.submitMany(tasks);
    await all;
    const makespan = (Date.now() - t0) / 1000;
    let busy = 0;
    let firstStart = Infinity;
    let lastEnd = 0;
    const startMs: number[] = [];
    const toShell: number[] = [];
    const launch: number[] = [];
    for (const [id, r] of results) {
      const o = decodeOutcome(r.payload);
      if (!o.ok) throw new Error(`mpi bench task ${id} failed: ${o.error.message}`);
      const out = (o.value as ShellResult).stdout;
      const m = /^placed (\d+) shell (\d+)$/m.exec(out);
      const placed = Number(m?.[1]);
      const shell = Number(m?.[2]);
      const starts = [...out.matchAll(/^rank \d+ size \d+ node \S+ start (\d+)$/gm)].map((x) => Number(x[1]));
      if (!placed || !shell || starts.length === 0) throw new Error(`mpi bench task ${id}: unexpected output ${out}`);
      const ms = r.ms ?? 0;
      busy += nodesOf.get(id)! * ms;
      startMs.push(Math.min(...starts) - placed);
      toShell.push(shell - placed);
      launch.push(Math.min(...starts) - shell);
      firstStart = Math.min(firstStart, placed);
      lastEnd = Math.max(lastEnd, placed + ms);
    }
    const ideal = sizes.reduce((s, n) => s + n * 2, 0) / 3;
    return {
      mpi_makespan_s: makespan,
      mpi_node_utilisation: busy / (3 * (lastEnd - firstStart)),
      mpi_task_start_ms_p50: p50(startMs),
      mpi_place_to_shell_ms_p50: p50(toShell),
      mpi_launch_ms_p50: p50(launch),
      mpi_ideal_makespan_s: ideal,
    };
  } finally {
    await engine.stop({ graceMs: 0 });
    rmSync(dir, { recursive: true, force: true });
  }
}
