/**
 * `npm run bench [-- --json]`: the engine's figures beside the raw ZeroMQ baseline measured in the same run.
 * With --json the last line is one JSON object.
 */
import { benchEngine } from './engine-bench.js';
import { zmqRoundTripsPerSecond } from './zmq-baseline.js';

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

const rows: Array<[string, string, string]> = [
  ['raw ZeroMQ round trips/s (baseline)', String(figures.zmq_roundtrips_per_s), ''],
  ['engine no-op tasks/s (median of 3)', String(figures.tasks_per_s), `${(engine.tasks_per_s / (figures.zmq_roundtrips_per_s as number)).toFixed(2)}× baseline; runs ${engine.throughput_runs.map((r) => r.toFixed(0)).join(', ')}`],
  ['latency p50 (ms)', String(figures.latency_p50_ms), 'target ≤ 0.5'],
  ['latency p99 (ms)', String(figures.latency_p99_ms), 'target ≤ 3'],
  ['cold start (s)', String(figures.cold_start_s), 'target ≤ 0.6'],
];
const w0 = Math.max(...rows.map((r) => r[0].length));
const w1 = Math.max(...rows.map((r) => r[1].length));
console.log(`${'figure'.padEnd(w0)}  ${'value'.padStart(w1)}  note`);
for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`);
if (json) console.log(JSON.stringify(figures));
process.exit(0);

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
