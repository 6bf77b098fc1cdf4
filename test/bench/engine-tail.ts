/**
 * Diagnosis aid for the engine's latency tail (issue 14, item 4): the engine bench's sequence (warm-up,
 * throughput runs, then sequential round trips interleaved with a same-hops pipeline's), with a log-scale
 * histogram of both, the GC pauses of this process (the interchange's) and its event-loop delay, and which slow
 * round trips overlapped a GC.
 *
 *   node dist/test/bench/engine-tail.js [--samples 2000] [--throughput 100000] [--runs 3] [--run-delay]
 * A third series, interleaved too, is the smallest round trip there is: two processes over a socket pair.
 * --run-delay reads, around every round trip, how long each hop's threads (main threads, ZeroMQ I/O threads)
 * waited for a CPU (run-delay.ts, Linux), and says how much of the slow round trips that wait explains.
 * Run the interchange process with --cpu-prof, and set FUNCX_CPU_PROFILE_DIR for the managers and workers;
 * --gc-dir DIR matches slow round trips with the collections of every process (the managers' and workers'
 * too), which gc-watch.ts, preloaded with NODE_OPTIONS="--import .../gc-watch.js" and FUNCX_GC_DIR=DIR, wrote.
 */
import { PerformanceObserver, monitorEventLoopDelay, type PerformanceEntry } from 'node:perf_hooks';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEngine, jsTask } from '../helpers/engine-fixture.js';
import { until } from '../helpers/wait.js';
import { percentile, throughput } from './engine-bench.js';
import { HopsPipeline } from './hops-baseline.js';
import { PipePingPong } from './pipe-pingpong.js';
import { childPids, hopThreads, RunDelay } from './run-delay.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const samples = arg('samples', 2000);
const batch = arg('throughput', 100_000);
const runs = arg('runs', 3);
const withRunDelay = args.includes('--run-delay');
const gcDir = args.includes('--gc-dir') ? args[args.indexOf('--gc-dir') + 1] : null;

const gcs: Array<{ start: number; end: number; kind: number }> = [];
const obs = new PerformanceObserver((list) => {
  for (const e of list.getEntries() as Array<PerformanceEntry & { detail?: { kind: number } }>) gcs.push({ start: e.startTime, end: e.startTime + e.duration, kind: e.detail?.kind ?? 0 });
});
obs.observe({ entryTypes: ['gc'] });

const f = await startEngine({ heartbeatPeriodMs: 5000, heartbeatThresholdMs: 30000 });
const manager = f.startManager(['--max-workers', '2']);
await f.interchange.submit(jsTask('() => 1', [], 'first'));


if (runs > 0) await throughput(f, 20_000);
for (let i = 0; i < runs; i++) console.log(`throughput ${(await throughput(f, batch)).toFixed(0)} tasks/s`);

/** One measured series: its round trips (ms, in the order run) and, with --run-delay, each one's waits by thread. */
interface Series {
  name: string;
  roundTrip: (j: number) => Promise<number>;
  threads?: RunDelay;
  ms: number[];
  starts: number[];
  waits: number[][];
}

const noop = jsTask('() => null', [], 'noop');
const hops = await HopsPipeline.start();
const pair = await PipePingPong.start();
const watch = (make: () => RunDelay): RunDelay | undefined => (withRunDelay ? make() : undefined);
const series: Series[] = [
  {
    name: 'engine',
    roundTrip: async (j) => {
      const t = performance.now();
      await f.interchange.submit({ ...noop, id: `lat${j}` });
      return performance.now() - t;
    },
    threads: watch(() => new RunDelay([...hopThreads('interchange', process.pid), ...hopThreads('manager', manager.pid!), ...childPids(manager.pid!).flatMap((p) => hopThreads('worker', p))])),
    ms: [], starts: [], waits: [],
  },
  {
    name: 'same hops, nothing else',
    roundTrip: () => hops.roundTrip(),
    threads: watch(() => new RunDelay([...hopThreads('bench', process.pid), ...hopThreads('relay', hops.relayPid), ...childPids(hops.relayPid).flatMap((p) => hopThreads('echo', p))])),
    ms: [], starts: [], waits: [],
  },
  {
    name: 'socket pair, two processes',
    roundTrip: () => pair.roundTrip(),
    threads: watch(() => new RunDelay([...hopThreads('bench', process.pid), ...hopThreads('echo', pair.childPid)])),
    ms: [], starts: [], waits: [],
  },
];
const loop = monitorEventLoopDelay({ resolution: 1 });
gcs.length = 0;
loop.enable();
// Blocks of 20 round trips of each series in turn: all see the same machine.
for (let i = 0; i < samples + 50; i += 20) {
  for (const s of series) {
    for (let j = i; j < Math.min(i + 20, samples + 50); j++) {
      const before = s.threads?.sample();
      const start = performance.now();
      const ms = await s.roundTrip(j);
      if (j < 50) continue;
      s.ms.push(ms);
      s.starts.push(start);
      if (before) s.waits.push(s.threads!.sample().map((a, k) => (a - before[k]) / 1e6));
    }
  }
}
loop.disable();
await pair.stop();
await hops.stop();
await f.stop();
obs.disconnect();

const edges = [0.05, 0.1, 0.25, 0.35, 0.5, 0.7, 1, 1.4, 2, 2.8, 4, 5.6, 8, 11, 16, 23, 32, 64, Infinity];
function report(name: string, sorted: number[]): void {
  const p50 = percentile(sorted, 50);
  const p99 = percentile(sorted, 99);
  console.log(`${name}: ${sorted.length} round trips, p50 ${p50.toFixed(3)} ms, p90 ${percentile(sorted, 90).toFixed(3)}, p99 ${p99.toFixed(3)} (${(p99 / p50).toFixed(1)}× p50), max ${sorted[sorted.length - 1].toFixed(3)}`);
  let lo = 0;
  for (const hi of edges) {
    const n = sorted.filter((x) => x >= lo && x < hi).length;
    if (n > 0) console.log(`  [${lo.toString().padStart(5)}, ${String(hi).padStart(5)}) ms ${String(n).padStart(6)} ${'#'.repeat(Math.ceil((60 * n) / sorted.length))}`);
    lo = hi;
  }
}

const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);

/**
 * How much of the tail the wait for a CPU explains: of the round trips slower than 5× p50, those whose
 * threads waited at least 80 % of their excess over p50, and the slowest 2 %'s wait by thread.
 */
function waits(s: Series): void {
  const n = s.threads!.threads.length;
  const p50 = percentile([...s.ms].sort((a, b) => a - b), 50);
  const total = s.waits.map((w) => w.slice(0, n).reduce((sum, x) => sum + x, 0));
  const exec = s.waits.map((w) => w.slice(n).reduce((sum, x) => sum + x, 0));
  const slow = s.ms.map((_, k) => k).filter((k) => s.ms[k] > 5 * p50);
  const explained = slow.filter((k) => total[k] >= 0.8 * (s.ms[k] - p50));
  const slowest = s.ms.map((_, k) => k).sort((a, b) => s.ms[b] - s.ms[a]).slice(0, Math.ceil(s.ms.length / 50));
  const typical = s.ms.map((_, k) => k).filter((k) => s.ms[k] <= p50);
  console.log(`${s.name}: ${slow.length} round trips > 5× p50, ${explained.length} of them spent ≥ 80 % of their excess waiting for a CPU; mean wait per round trip ${mean(total).toFixed(3)} ms`);
  const byThread = s.threads!.threads.map((t, i) => `${t.label} ${mean(slowest.map((k) => s.waits[k][i])).toFixed(2)}`);
  console.log(`  slowest 2 %: mean ${mean(slowest.map((k) => s.ms[k])).toFixed(3)} ms, waiting ${mean(slowest.map((k) => total[k])).toFixed(3)} ms (${byThread.join(', ')})`);
  // Time on a CPU: a slow trip that ran much longer than a typical one did work (GC, compilation) in a hop;
  // one that neither waited nor ran lost its time outside the guest's accounting (the host took the vCPU).
  const execBy = s.threads!.threads.map((t, i) => `${t.label} ${mean(slowest.map((k) => s.waits[k][n + i])).toFixed(2)} vs ${mean(typical.map((k) => s.waits[k][n + i])).toFixed(2)}`);
  // The first thread's figure includes reading /proc around the trip (it is the reader), so the sum can exceed the trip.
  console.log(`  on a CPU: trips ≤ p50 ${mean(typical.map((k) => exec[k])).toFixed(3)} ms, slowest 2 % ${mean(slowest.map((k) => exec[k])).toFixed(3)} ms (slowest vs ≤ p50: ${execBy.join(', ')}); unaccounted in the slowest 2 %: ${mean(slowest.map((k) => s.ms[k] - total[k] - exec[k])).toFixed(3)} ms`);
}

for (const s of series) report(s.name, [...s.ms].sort((a, b) => a - b));
const engine = series[0];
const engineP50 = percentile([...engine.ms].sort((a, b) => a - b), 50);
const slow = engine.ms.map((ms, k) => ({ ms, start: engine.starts[k] })).filter((l) => l.ms > 5 * engineP50);
const withGc = slow.filter((l) => gcs.some((g) => g.end > l.start && g.start < l.start + l.ms));
console.log(`engine round trips > 5× p50: ${slow.length}; overlapping a GC in this process: ${withGc.length}; GCs here during the run: ${gcs.length} (total ${gcs.reduce((s, g) => s + g.end - g.start, 0).toFixed(1)} ms, max ${Math.max(0, ...gcs.map((g) => g.end - g.start)).toFixed(2)} ms)`);
if (gcDir) {
  // The children wrote their files at exit (f.stop() waited for the managers; workers exit with them).
  await until('the managers\' and workers\' GC files', () => existsSync(gcDir) && readdirSync(gcDir).filter((n) => n.endsWith('.json')).length >= 3, { timeoutMs: 10_000 }).catch(() => {});
  const files = readdirSync(gcDir).filter((n) => n.endsWith('.json')).map((n) => JSON.parse(readFileSync(join(gcDir, n), 'utf8')) as { argv: string; gcs: Array<[number, number]> });
  const origin = performance.timeOrigin;
  const slowEpoch = slow.map((l) => ({ start: origin + l.start, end: origin + l.start + l.ms }));
  for (const file of files) {
    const role = file.argv.includes('manager') ? 'manager' : file.argv.includes('worker.js') ? 'worker' : null;
    if (role === null) continue;
    const hit = slowEpoch.filter((l) => file.gcs.some(([start, ms]) => start < l.end && start + ms > l.start));
    const during = file.gcs.filter(([start]) => start >= origin + engine.starts[0] && start <= origin + engine.starts[engine.starts.length - 1]);
    console.log(`${role}: ${during.length} GCs during the round trips (total ${during.reduce((t, g) => t + g[1], 0).toFixed(1)} ms, max ${Math.max(0, ...during.map((g) => g[1])).toFixed(2)}); slow round trips overlapping one: ${hit.length}`);
  }
}
console.log(`event-loop delay here (resolution 1 ms): p50 ${(loop.percentile(50) / 1e6).toFixed(2)} ms, p99 ${(loop.percentile(99) / 1e6).toFixed(2)} ms, max ${(loop.max / 1e6).toFixed(2)} ms`);
if (withRunDelay) {
  for (const s of series) {
    waits(s);
    s.threads!.close();
  }
}
