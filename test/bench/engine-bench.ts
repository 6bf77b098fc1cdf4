/**
 * The engine's figures: no-op tasks through interchange → one manager → 2 workers, with CURVE on.
 * Latency: sequential round trips, in blocks interleaved with those of a pipeline with the same hops and
 * nothing else (hops-baseline.ts) and of two processes over a socket pair (pipe-pingpong.ts), so the tail the
 * machine itself adds is measured beside the engine's, with how idle the CPUs were meanwhile.
 */
import { startEngine, jsTask, type EngineFixture } from '../helpers/engine-fixture.js';
import { until } from '../helpers/wait.js';
import type { TaskEnvelope } from '../../src/protocol/messages.js';
import { HopsPipeline } from './hops-baseline.js';
import { PipePingPong } from './pipe-pingpong.js';
import { existsSync, readFileSync } from 'node:fs';

export interface EngineFigures {
  tasks_per_s: number;
  throughput_runs: number[];
  latency_p50_ms: number;
  latency_p99_ms: number;
  /** The same-hops pipeline's round trips, measured interleaved with the engine's. */
  hops_latency_p50_ms: number;
  hops_latency_p99_ms: number;
  /** Two processes over a socket pair, interleaved too: the wake-up tail of the machine alone. */
  pair_latency_p50_ms: number;
  pair_latency_p99_ms: number;
  /** The machine's idle CPU time while the round trips ran (%; null off Linux): near 0, every wake-up queues. */
  latency_cpu_idle_pct: number | null;
  cold_start_s: number;
}

/** Sequential round trips measured (after 50 of warm-up): p99 is then the 20th slowest, not the 5th. */
export const LATENCY_SAMPLES = 2000;
const BLOCK = 20;

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Idle and total CPU ticks of the whole machine so far (/proc/stat), or null off Linux. */
function cpuTicks(): { idle: number; total: number } | null {
  if (!existsSync('/proc/stat')) return null;
  const fields = readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  return { idle: fields[3] + fields[4], total };
}

/** No-op tasks/s through `f`'s interchange for a batch of `n` submitted at once. */
export async function throughput(f: EngineFixture, n: number): Promise<number> {
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

export async function benchEngine(progress: (m: string) => void = () => {}): Promise<EngineFigures> {
  // Cold start: from creating the engine to the first result.
  const t0 = performance.now();
  const f = await startEngine({ heartbeatPeriodMs: 5000, heartbeatThresholdMs: 30000 });
  f.startManager(['--max-workers', '2']);
  await f.interchange.submit(jsTask('() => 1', [], 'first'));
  const coldStart = (performance.now() - t0) / 1000;
  progress(`cold start ${coldStart.toFixed(3)} s`);

  await throughput(f, 20_000); // warm-up: JIT, worker windows
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) {
    runs.push(await throughput(f, 100_000));
    progress(`throughput run ${i + 1}: ${runs[i].toFixed(0)} tasks/s`);
  }

  const noop = jsTask('() => null', [], 'noop');
  const hops = await HopsPipeline.start();
  const pair = await PipePingPong.start();
  const latencies: number[] = [];
  const hopLatencies: number[] = [];
  const pairLatencies: number[] = [];
  const ticks0 = cpuTicks();
  for (let i = 0; i < LATENCY_SAMPLES + 50; i += BLOCK) {
    for (let j = i; j < Math.min(i + BLOCK, LATENCY_SAMPLES + 50); j++) {
      const t = performance.now();
      await f.interchange.submit({ ...noop, id: `lat${j}` });
      if (j >= 50) latencies.push(performance.now() - t);
    }
    for (let j = i; j < Math.min(i + BLOCK, LATENCY_SAMPLES + 50); j++) {
      const ms = await hops.roundTrip();
      if (j >= 50) hopLatencies.push(ms);
    }
    for (let j = i; j < Math.min(i + BLOCK, LATENCY_SAMPLES + 50); j++) {
      const ms = await pair.roundTrip();
      if (j >= 50) pairLatencies.push(ms);
    }
  }
  const ticks1 = cpuTicks();
  latencies.sort((a, b) => a - b);
  hopLatencies.sort((a, b) => a - b);
  pairLatencies.sort((a, b) => a - b);
  await pair.stop();
  await hops.stop();
  await f.stop();
  const sortedRuns = [...runs].sort((a, b) => a - b);
  return {
    tasks_per_s: sortedRuns[1],
    throughput_runs: runs,
    latency_p50_ms: percentile(latencies, 50),
    latency_p99_ms: percentile(latencies, 99),
    hops_latency_p50_ms: percentile(hopLatencies, 50),
    hops_latency_p99_ms: percentile(hopLatencies, 99),
    pair_latency_p50_ms: percentile(pairLatencies, 50),
    pair_latency_p99_ms: percentile(pairLatencies, 99),
    latency_cpu_idle_pct: ticks0 && ticks1 && ticks1.total > ticks0.total ? (100 * (ticks1.idle - ticks0.idle)) / (ticks1.total - ticks0.total) : null,
    cold_start_s: coldStart,
  };
}
