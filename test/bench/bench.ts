/**
 * `npm run bench [-- --json]`: the engine's figures beside the raw ZeroMQ baseline measured in the same run.
 * With --json the last line is one JSON object.
 */
import { benchEngine } from './engine-bench.js';
import { zmqRoundTripsPerSecond } from './zmq-baseline.js';
import { benchStrategy } from './strategy-bench.js';
import { benchScale } from './scale-bench.js';
import { benchEndToEnd } from './e2e-bench.js';
import { execSync } from 'node:child_process';

const json = process.argv.includes('--json');
const progress = (m: string): void => {
  process.stderr.write(`… ${m}\n`);
};

const figures: Record<string, number | number[] | string> = {};
progress('raw ZeroMQ baseline');
figures.zmq_roundtrips_per_s = Math.round(await zmqRoundTripsPerSecond());
progress(`raw ZeroMQ: ${figures.zmq_roundtrips_per_s} round trips/s`);
const engine = await benchEngine(progress);
Object.assign(figures, {
  tasks_per_s: Math.round(engine.tasks_per_s),
  latency_p50_ms: round(engine.latency_p50_ms),
  latency_p99_ms: round(engine.latency_p99_ms),
  cold_start_s: round(engine.cold_start_s),
});

progress('end to end: real service, endpoint and SDK');
const e2e = await benchEndToEnd(progress);
Object.assign(figures, {
  e2e_batch_tasks_per_s: Math.round(e2e.e2e_batch_tasks_per_s),
  e2e_latency_p50_ms: round(e2e.e2e_latency_p50_ms),
  e2e_latency_p99_ms: round(e2e.e2e_latency_p99_ms),
  e2e_start_to_active_s: round(e2e.e2e_start_to_active_s),
});

progress('scale: 2,048 simulated managers × 64 workers');
const scale = await benchScale(progress);
Object.assign(figures, {
  sim_workers: scale.sim_workers,
  sim_register_s: round(scale.sim_register_s),
  sim_rss_mib: Math.round(scale.sim_rss_mib),
  sim_tasks_per_s: Math.round(scale.sim_tasks_per_s),
  sim_heartbeat_round_ms: round(scale.sim_heartbeat_round_ms),
});

// The strategy workloads need the Slurm test cluster (test/cluster/start-slurm.sh).
let slurmUp = false;
try {
  slurmUp = /idle|mix|alloc/.test(execSync("sinfo -h -o '%t' 2>/dev/null", { encoding: 'utf8' }));
} catch {
  slurmUp = false;
}
const skipStrategy = process.argv.includes('--no-slurm');
if (slurmUp && !skipStrategy) {
  progress('strategy workloads on the Slurm test cluster (about 2 minutes)');
  const s = await benchStrategy(progress);
  for (const [k, v] of Object.entries(s)) figures[k] = round(v);
} else {
  progress(skipStrategy ? 'strategy workloads skipped (--no-slurm)' : 'strategy workloads NOT measured: no Slurm test cluster answers sinfo (run test/cluster/start-slurm.sh as root)');
}

const rows: Array<[string, string, string]> = [
  ['raw ZeroMQ round trips/s (baseline)', String(figures.zmq_roundtrips_per_s), ''],
  ['engine no-op tasks/s (median of 3)', String(figures.tasks_per_s), `${(engine.tasks_per_s / (figures.zmq_roundtrips_per_s as number)).toFixed(2)}× baseline; runs ${engine.throughput_runs.map((r) => r.toFixed(0)).join(', ')}`],
  ['latency p50 (ms)', String(figures.latency_p50_ms), 'target ≤ 0.5'],
  ['latency p99 (ms)', String(figures.latency_p99_ms), 'target ≤ 3'],
  ['cold start (s)', String(figures.cold_start_s), 'target ≤ 0.6'],
];
rows.push(
  ['end to end: batch of 10,000 tasks/s', String(figures.e2e_batch_tasks_per_s), 'target ≥ 10,000; funcX hosted: hundreds'],
  ['end to end: single round trip p50 (ms)', String(figures.e2e_latency_p50_ms), 'target ≤ 3'],
  ['end to end: single round trip p99 (ms)', String(figures.e2e_latency_p99_ms), ''],
  ['end to end: start → Active (s)', String(figures.e2e_start_to_active_s), 'target ≤ 2; funcX 3.6 cold'],
);
rows.push(
  ['scale: simulated workers on one endpoint', String(figures.sim_workers), `${scale.sim_managers} managers × 64, registered in ${figures.sim_register_s} s`],
  ['scale: endpoint peak RSS (MiB)', String(figures.sim_rss_mib), 'target < 2048'],
  ['scale: dispatch tasks/s', String(figures.sim_tasks_per_s), `${(scale.sim_tasks_per_s / engine.tasks_per_s).toFixed(2)}× single-manager tasks/s (target ≥ 0.5)`],
  ['scale: one heartbeat round (ms)', String(figures.sim_heartbeat_round_ms), 'CPU to queue a heartbeat to every manager'],
);
if (figures.burst_makespan_s !== undefined) {
  rows.push(
    ['burst: first block (s)', String(figures.burst_first_block_s), 'target ≤ 1; Parsl HTEX 0.6–0.8'],
    ['burst: makespan (s)', String(figures.burst_makespan_s), 'ideal 12.5, target ≤ 15.6; Parsl 19.1–19.9'],
    ['burst: peak blocks', String(figures.burst_peak_blocks), 'max_blocks 2'],
    ['burst: last result → no block (s)', String(figures.burst_scale_in_s), 'target ≤ 18 (max_idletime 15 + 3); Parsl 16.1–16.4'],
    ['walltime: makespan (s)', String(figures.walltime_makespan_s), 'ideal 75, target ≤ 112; Parsl 184'],
    ['walltime: tasks failed', String(figures.walltime_failed), 'target 0; Parsl 8'],
  );
}
const w0 = Math.max(...rows.map((r) => r[0].length));
const w1 = Math.max(...rows.map((r) => r[1].length));
console.log(`${'figure'.padEnd(w0)}  ${'value'.padStart(w1)}  note`);
for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`);
if (json) console.log(JSON.stringify(figures));
process.exit(0);

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
