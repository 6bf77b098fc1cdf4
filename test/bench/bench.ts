/**
 * `npm run bench [-- --json] [--only engine,e2e,scale,strategy,mpi,sites] [--no-slurm]`: every figure of the project,
 * each beside its baseline measured in the same run (raw ZeroMQ round trips) or the peer's published figure.
 * With --json the last line is one JSON object.
 */
import { execSync } from 'node:child_process';
import { benchEngine } from './engine-bench.js';
import { zmqRoundTripsPerSecond } from './zmq-baseline.js';
import { benchStrategy } from './strategy-bench.js';
import { benchScale } from './scale-bench.js';
import { benchEndToEnd } from './e2e-bench.js';
import { benchPostgres } from './e2e-pg-bench.js';
import { benchMpi } from './mpi-bench.js';
import { benchSites } from './sites-bench.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const onlyArg = args.find((a, i) => args[i - 1] === '--only' || a.startsWith('--only='))?.replace('--only=', '');
const only = new Set((onlyArg ?? 'engine,e2e,scale,strategy').split(','));
const progress = (m: string): void => {
  process.stderr.write(`… ${m}\n`);
};
const round = (x: number): number => Math.round(x * 1000) / 1000;

const figures: Record<string, number> = {};
const rows: Array<[string, string, string]> = [];
const add = (label: string, key: string, note = ''): void => {
  rows.push([label, String(figures[key]), note]);
};

progress('raw ZeroMQ baseline');
figures.zmq_roundtrips_per_s = Math.round(await zmqRoundTripsPerSecond());
add('raw ZeroMQ round trips/s (baseline)', 'zmq_roundtrips_per_s', 'ROUTER/DEALER, 100 B, window 1000, two processes');

let engineTasksPerS = 0;
if (only.has('engine')) {
  const engine = await benchEngine(progress);
  engineTasksPerS = engine.tasks_per_s;
  Object.assign(figures, {
    tasks_per_s: Math.round(engine.tasks_per_s),
    latency_p50_ms: round(engine.latency_p50_ms),
    latency_p99_ms: round(engine.latency_p99_ms),
    hops_latency_p50_ms: round(engine.hops_latency_p50_ms),
    hops_latency_p99_ms: round(engine.hops_latency_p99_ms),
    pair_latency_p50_ms: round(engine.pair_latency_p50_ms),
    pair_latency_p99_ms: round(engine.pair_latency_p99_ms),
    cold_start_s: round(engine.cold_start_s),
  });
  const ratio = (engine.tasks_per_s / figures.zmq_roundtrips_per_s).toFixed(2);
  add('engine no-op tasks/s (median of 3)', 'tasks_per_s', `${ratio}× baseline; runs ${engine.throughput_runs.map((r) => r.toFixed(0)).join(', ')}; Parsl HTEX ~1,400`);
  add('latency p50 (ms)', 'latency_p50_ms', 'target ≤ 0.5; Parsl 1.38');
  add('latency p99 (ms)', 'latency_p99_ms', `target ≤ 3 and ≤ 5× p50 (now ${(engine.latency_p99_ms / engine.latency_p50_ms).toFixed(1)}×); Parsl 2.81`);
  const hopsRatio = (engine.hops_latency_p99_ms / engine.hops_latency_p50_ms).toFixed(1);
  add('same hops, nothing else: p50 (ms)', 'hops_latency_p50_ms', 'interleaved with the engine\'s round trips');
  add('same hops, nothing else: p99 (ms)', 'hops_latency_p99_ms', `${hopsRatio}× its p50: the tail the machine adds`);
  const pairRatio = (engine.pair_latency_p99_ms / engine.pair_latency_p50_ms).toFixed(1);
  add('socket pair, two processes: p50 (ms)', 'pair_latency_p50_ms', 'interleaved too: one wake-up each way, no ZeroMQ');
  add('socket pair, two processes: p99 (ms)', 'pair_latency_p99_ms', `${pairRatio}× its p50: the machine's wake-ups alone`);
  if (engine.latency_cpu_idle_pct !== null) figures.latency_cpu_idle_pct = Math.round(engine.latency_cpu_idle_pct);
  if (engine.latency_cpu_idle_pct !== null) add('CPU idle while measuring latency (%)', 'latency_cpu_idle_pct', 'whole machine (/proc/stat); near 0 every wake-up waits for a CPU');
  add('cold start (s)', 'cold_start_s', 'target ≤ 0.6; Parsl 5.9');
}

if (only.has('e2e')) {
  progress('end to end: real service, endpoint and SDK');
  const e2e = await benchEndToEnd(progress);
  Object.assign(figures, {
    e2e_batch_tasks_per_s: Math.round(e2e.e2e_batch_tasks_per_s),
    e2e_batch_first_tasks_per_s: Math.round(e2e.e2e_batch_first_tasks_per_s),
    e2e_latency_p50_ms: round(e2e.e2e_latency_p50_ms),
    e2e_latency_p99_ms: round(e2e.e2e_latency_p99_ms),
    e2e_latency_run_get_p50_ms: round(e2e.e2e_latency_run_get_p50_ms),
    e2e_start_to_active_s: round(e2e.e2e_start_to_active_s),
  });
  const sqliteRatio = (figures.e2e_batch_tasks_per_s / figures.zmq_roundtrips_per_s).toFixed(2);
  add('end to end: batch of 10,000 tasks/s', 'e2e_batch_tasks_per_s', `warm, median of 3: ${sqliteRatio}× baseline; target ≥ 0.35×; funcX hosted: hundreds`);
  add('end to end: the first batch of 10,000 tasks/s', 'e2e_batch_first_tasks_per_s', 'after one of 2,000: the processes still compiling');
  add('end to end: single round trip p50 (ms)', 'e2e_latency_p50_ms', 'SDK call (one POST ?wait); target ≤ 3');
  add('end to end: single round trip p99 (ms)', 'e2e_latency_p99_ms');
  add('end to end: run + getResult p50 (ms)', 'e2e_latency_run_get_p50_ms', 'two requests, interleaved with the calls');
  add('end to end: start → Active (s)', 'e2e_start_to_active_s', 'target ≤ 2; funcX 3.6 cold');
  const pg = await benchPostgres(progress);
  if (pg) {
    Object.assign(figures, pg);
    const zmq = figures.zmq_roundtrips_per_s;
    add('end to end on PostgreSQL: batch of 10,000 tasks/s', 'e2e_pg_batch_tasks_per_s', `warm, median of 3: ${(pg.e2e_pg_batch_tasks_per_s / zmq).toFixed(2)}× baseline; target ≥ 0.15×`);
    add('end to end on PostgreSQL: the first batch of 10,000 tasks/s', 'e2e_pg_batch_first_tasks_per_s');
    add('end to end on PostgreSQL: single round trip p50 (ms)', 'e2e_pg_latency_p50_ms', 'SDK call (one POST ?wait)');
    add('end to end on PostgreSQL: run + getResult p50 (ms)', 'e2e_pg_latency_run_get_p50_ms');
    add('end to end on PostgreSQL, SDK on a second replica: batch tasks/s', 'e2e_pg_replicas_batch_tasks_per_s', 'target: no slower than one replica');
  }
}

if (only.has('scale')) {
  progress('scale: 2,048 simulated managers × 64 workers');
  const scale = await benchScale(progress);
  Object.assign(figures, {
    sim_workers: scale.sim_workers,
    sim_register_s: round(scale.sim_register_s),
    sim_rss_mib: Math.round(scale.sim_rss_mib),
    sim_tasks_per_s: Math.round(scale.sim_tasks_per_s),
    sim_heartbeat_round_ms: round(scale.sim_heartbeat_round_ms),
  });
  add('scale: simulated workers on one endpoint', 'sim_workers', `${scale.sim_managers} managers × 64, registered in ${figures.sim_register_s} s`);
  add('scale: endpoint peak RSS (MiB)', 'sim_rss_mib', 'target < 2048');
  const vs = engineTasksPerS ? `${(scale.sim_tasks_per_s / engineTasksPerS).toFixed(2)}× single-manager tasks/s (target ≥ 0.5)` : '';
  add('scale: dispatch tasks/s', 'sim_tasks_per_s', vs);
  add('scale: one heartbeat round (ms)', 'sim_heartbeat_round_ms', 'CPU to queue a heartbeat to every manager');
}

if (only.has('strategy')) {
  // The strategy workloads need the Slurm test cluster (test/cluster/start-slurm.sh).
  let slurmUp = false;
  try {
    slurmUp = /idle|mix|alloc/.test(execSync("sinfo -h -o '%t' 2>/dev/null", { encoding: 'utf8' }));
  } catch {
    slurmUp = false;
  }
  if (slurmUp && !args.includes('--no-slurm')) {
    progress('strategy workloads on the Slurm test cluster (about 2 minutes)');
    const s = await benchStrategy(progress);
    for (const [k, v] of Object.entries(s)) figures[k] = round(v);
    add('burst: first block (s)', 'burst_first_block_s', 'target ≤ 1; Parsl HTEX 0.6–0.8');
    add('burst: makespan (s)', 'burst_makespan_s', 'ideal 12.5, target ≤ 15.6; Parsl 19.1–19.9');
    add('burst: peak blocks', 'burst_peak_blocks', 'max_blocks 2');
    add('burst: last result → no block (s)', 'burst_scale_in_s', 'target ≤ 18 (max_idletime 15 + 3); Parsl 16.1–16.4');
    add('walltime: makespan (s)', 'walltime_makespan_s', 'ideal 75, target ≤ 112; Parsl 184');
    add('walltime: tasks failed', 'walltime_failed', 'target 0; Parsl 8');
  } else {
    progress(args.includes('--no-slurm') ? 'strategy workloads skipped (--no-slurm)' : 'strategy workloads NOT measured: no Slurm test cluster answers sinfo (run test/cluster/start-slurm.sh as root)');
  }
}

if (only.has('mpi')) {
  // Needs the Slurm test cluster and Open MPI (test/cluster/start-slurm.sh, start-mpi.sh).
  progress('mpi: mixed MPI workload on the Slurm test cluster (about 2 minutes)');
  const m = await benchMpi(progress);
  for (const [k, v] of Object.entries(m)) figures[k] = round(v);
  add('mpi: makespan (s)', 'mpi_makespan_s', `60 tasks of 1-3 nodes × 2 ranks × 2 s on one 3-node block; ideal ${figures.mpi_ideal_makespan_s} s`);
  add('mpi: node utilisation', 'mpi_node_utilisation', 'busy / allocated node-seconds while work waits; target ≥ 0.85');
  add('mpi: task start p50 (ms)', 'mpi_task_start_ms_p50', 'nodes given → first rank after MPI_Init (mpirun + orted via Slurm); target ≤ 300');
  add('mpi: nodes given → task shell p50 (ms)', 'mpi_place_to_shell_ms_p50', 'ours: manager → worker → /bin/sh');
  add('mpi: shell → first rank p50 (ms)', 'mpi_launch_ms_p50', 'Open MPI: mpirun, orted through srun, MPI_Init');
}

if (only.has('sites')) {
  // Needs the Slurm test cluster (test/cluster/start-slurm.sh); run under flock /tmp/cluster.lock.
  progress('sites: contended cluster and a held block on the Slurm test cluster (about 3 minutes)');
  const st = await benchSites(progress);
  for (const [k, v] of Object.entries(st)) figures[k] = round(v);
  add('sites: contended makespan (s)', 'contended_makespan_s', '200 × 0.5 s, 2 of 3 nodes busy for 60 s, max_blocks 3, 2 workers/node');
  add('sites: contended wasted node-s', 'contended_wasted_node_s', 'blocks that started after the backlog was empty; target 0 where the queue-wait estimate allows');
  add('sites: contended blocks cancelled unstarted', 'contended_cancelled_unstarted', 'held no node');
  add('sites: contended blocks', 'contended_blocks');
  add('sites: held block → replacement runs a task (s)', 'held_replaced_s', 'max_pending_time 20 s, period 1 s; target ≤ 22');
  add('sites: scheduler calls/min at steady state', 'scheduler_calls_per_min', 'target ≤ 12 (max_status_rate)');
}

const w0 = Math.max(...rows.map((r) => r[0].length));
const w1 = Math.max(...rows.map((r) => r[1].length));
console.log(`${'figure'.padEnd(w0)}  ${'value'.padStart(w1)}  note`);
for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`);
if (json) console.log(JSON.stringify(figures));
process.exit(0);
