/**
 * Diagnosis aid for the engine's latency tail (issue 14, item 4): the engine bench's sequence (warm-up,
 * throughput runs, then sequential round trips interleaved with a same-hops pipeline's), with a log-scale
 * histogram of both, the GC pauses of this process (the interchange's) and its event-loop delay, and which slow
 * round trips overlapped a GC.
 *
 *   node dist/test/bench/engine-tail.js [--samples 2000] [--throughput 100000] [--runs 3]
 * Run the interchange process with --cpu-prof, and set FUNCX_CPU_PROFILE_DIR for the managers and workers;
 * NODE_OPTIONS=--trace-gc shows the managers' and workers' collections too.
 */
import { PerformanceObserver, monitorEventLoopDelay, type PerformanceEntry } from 'node:perf_hooks';
import { startEngine, jsTask } from '../helpers/engine-fixture.js';
import { until } from '../helpers/wait.js';
import type { TaskEnvelope } from '../../src/protocol/messages.js';
import { percentile } from './engine-bench.js';
import { HopsPipeline } from './hops-baseline.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const samples = arg('samples', 2000);
const batch = arg('throughput', 100_000);
const runs = arg('runs', 3);

const gcs: Array<{ start: number; end: number; kind: number }> = [];
const obs = new PerformanceObserver((list) => {
  for (const e of list.getEntries() as Array<PerformanceEntry & { detail?: { kind: number } }>) gcs.push({ start: e.startTime, end: e.startTime + e.duration, kind: e.detail?.kind ?? 0 });
});
obs.observe({ entryTypes: ['gc'] });

const f = await startEngine({ heartbeatPeriodMs: 5000, heartbeatThresholdMs: 30000 });
f.startManager(['--max-workers', '2']);
await f.interchange.submit(jsTask('() => 1', [], 'first'));

async function throughput(n: number): Promise<number> {
  const noop = jsTask('() => null', [], 'noop');
  const tasks: TaskEnvelope[] = new Array(n);
  const tag = Math.random().toString(36).slice(2);
  for (let i = 0; i < n; i++) tasks[i] = { id: `${tag}${i}`, fn: noop.fn, payload: noop.payload };
  let done = 0;
  f.interchange.onResults = (results) => {
    done += results.length;
  };
  const t0 = performance.now();
  f.interchange.submitMany(tasks);
  await until('throughput batch', () => done >= n, { timeoutMs: 120_000, everyMs: 20 });
  return n / ((performance.now() - t0) / 1000);
}

if (runs > 0) await throughput(20_000);
for (let i = 0; i < runs; i++) console.log(`throughput ${(await throughput(batch)).toFixed(0)} tasks/s`);

const noop = jsTask('() => null', [], 'noop');
const hops = await HopsPipeline.start();
const loop = monitorEventLoopDelay({ resolution: 1 });
const lat: Array<{ start: number; ms: number }> = [];
const hopLat: number[] = [];
gcs.length = 0;
loop.enable();
// Blocks of 20 engine round trips, then 20 of the same-hops pipeline: both see the same machine.
for (let i = 0; i < samples + 50; i += 20) {
  for (let j = i; j < Math.min(i + 20, samples + 50); j++) {
    const t = performance.now();
    await f.interchange.submit({ ...noop, id: `lat${j}` });
    if (j >= 50) lat.push({ start: t, ms: performance.now() - t });
  }
  for (let j = i; j < Math.min(i + 20, samples + 50); j++) {
    const ms = await hops.roundTrip();
    if (j >= 50) hopLat.push(ms);
  }
}
loop.disable();
await hops.stop();
await f.stop();
obs.disconnect();

const edges = [0.25, 0.35, 0.5, 0.7, 1, 1.4, 2, 2.8, 4, 5.6, 8, 11, 16, 23, 32, 64, Infinity];
function report(name: string, sorted: number[]): number {
  const p50 = percentile(sorted, 50);
  const p99 = percentile(sorted, 99);
  console.log(`${name}: ${sorted.length} round trips, p50 ${p50.toFixed(3)} ms, p90 ${percentile(sorted, 90).toFixed(3)}, p99 ${p99.toFixed(3)} (${(p99 / p50).toFixed(1)}× p50), max ${sorted[sorted.length - 1].toFixed(3)}`);
  let lo = 0;
  for (const hi of edges) {
    const n = sorted.filter((x) => x >= lo && x < hi).length;
    if (n > 0) console.log(`  [${lo.toString().padStart(5)}, ${String(hi).padStart(5)}) ms ${String(n).padStart(6)} ${'#'.repeat(Math.ceil((60 * n) / sorted.length))}`);
    lo = hi;
  }
  return p50;
}
const p50 = report('engine', lat.map((l) => l.ms).sort((a, b) => a - b));
report('same hops, nothing else', hopLat.sort((a, b) => a - b));
const slow = lat.filter((l) => l.ms > 5 * p50);
const withGc = slow.filter((l) => gcs.some((g) => g.end > l.start && g.start < l.start + l.ms));
console.log(`engine round trips > 5× p50: ${slow.length}; overlapping a GC in this process: ${withGc.length}; GCs here during the run: ${gcs.length} (total ${gcs.reduce((s, g) => s + g.end - g.start, 0).toFixed(1)} ms, max ${Math.max(0, ...gcs.map((g) => g.end - g.start)).toFixed(2)} ms)`);
console.log(`event-loop delay here (resolution 1 ms): p50 ${(loop.percentile(50) / 1e6).toFixed(2)} ms, p99 ${(loop.percentile(99) / 1e6).toFixed(2)} ms, max ${(loop.max / 1e6).toFixed(2)} ms`);
