/**
 * Busy-poll windows side by side (issue 14, item 4): one engine per window of engine.busy_poll_us (the
 * manager's spinner, src/worker/busy-poll.ts), all in this process, their sequential round trips measured in
 * interleaved blocks of 20 so every window sees the same machine; then each one's throughput, in turn. Prints
 * p50/p99 and the CPU time its manager (spinner included) and workers spent per round trip.
 *
 *   node dist/test/bench/busy-poll-sweep.js [--windows 0,200,500] [--samples 3000] [--throughput 50000]
 */
import { readFileSync } from 'node:fs';
import { startEngine, jsTask, type EngineFixture } from '../helpers/engine-fixture.js';
import { percentile, throughput } from './engine-bench.js';
import { childPids } from './run-delay.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const windows = arg('windows', '0,200,500').split(',').map(Number);
const samples = Number(arg('samples', '3000'));
const batch = Number(arg('throughput', '50000'));

/** utime + stime of a process, in ms (Linux). */
function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}


interface Engine {
  windowUs: number;
  f: EngineFixture;
  pids: number[];
  ms: number[];
  cpu: number;
}

const engines: Engine[] = [];
for (const windowUs of windows) {
  const f = await startEngine({ heartbeatPeriodMs: 5000, heartbeatThresholdMs: 30000 });
  const m = f.startManager(['--max-workers', '2', '--busy-poll-us', String(windowUs)]);
  await f.interchange.submit(jsTask('() => 1', [], 'first'));
  await throughput(f, 20_000); // warm-up: JIT, worker windows
  engines.push({ windowUs, f, pids: [m.pid!, ...childPids(m.pid!)], ms: [], cpu: 0 });
}
const noop = jsTask('() => null', [], 'noop');
for (let i = 0; i < samples + 50; i += 20) {
  for (const e of engines) {
    const c0 = e.pids.reduce((s, p) => s + cpuMs(p), 0);
    for (let j = i; j < Math.min(i + 20, samples + 50); j++) {
      const t = performance.now();
      await e.f.interchange.submit({ ...noop, id: `lat${j}` });
      if (j >= 50) e.ms.push(performance.now() - t);
    }
    if (i >= 50) e.cpu += e.pids.reduce((s, p) => s + cpuMs(p), 0) - c0;
  }
}
for (const e of engines) {
  const s = [...e.ms].sort((a, b) => a - b);
  const p50 = percentile(s, 50);
  const p99 = percentile(s, 99);
  console.log(`window ${String(e.windowUs).padStart(4)} µs: p50 ${p50.toFixed(3)} ms, p90 ${percentile(s, 90).toFixed(3)}, p99 ${p99.toFixed(3)} (${(p99 / p50).toFixed(1)}×), manager+workers CPU ${(e.cpu / e.ms.length).toFixed(3)} ms per round trip`);
}
for (const e of engines) {
  const c0 = e.pids.reduce((s, p) => s + cpuMs(p), 0);
  const rate = await throughput(e.f, batch);
  const cpu = e.pids.reduce((s, p) => s + cpuMs(p), 0) - c0;
  console.log(`window ${String(e.windowUs).padStart(4)} µs: throughput ${rate.toFixed(0)} tasks/s, manager+workers CPU ${((1000 * cpu) / batch).toFixed(2)} µs per task`);
}
for (const e of engines) await e.f.stop();
