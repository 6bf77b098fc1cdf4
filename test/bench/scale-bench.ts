/**
 * The scale figures (issue 6): one interchange holding 2,048 simulated managers × 64 workers = 131,072
 * workers, from 4 simulator processes. Registration time, the endpoint's peak RSS, dispatch rate of no-op
 * tasks through all of them, and the CPU cost of one heartbeat round.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startEngine, jsTask } from '../helpers/engine-fixture.js';
import { until } from '../helpers/wait.js';
import type { TaskEnvelope } from '../../src/protocol/messages.js';

export interface ScaleFigures {
  sim_managers: number;
  sim_workers: number;
  sim_register_s: number;
  sim_rss_mib: number;
  sim_tasks_per_s: number;
  sim_heartbeat_round_ms: number;
}

const SIM = fileURLToPath(new URL('./sim-managers.js', import.meta.url));

export async function benchScale(progress: (m: string) => void = () => {}, managers = 2048, workersEach = 64, processes = 4): Promise<ScaleFigures> {
  const heartbeatMs = 5000;
  const f = await startEngine({ heartbeatPeriodMs: heartbeatMs, heartbeatThresholdMs: 60_000 });
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  const children: ChildProcess[] = [];
  try {
    const t0 = performance.now();
    const per = Math.ceil(managers / processes);
    const ready: Promise<void>[] = [];
    for (let p = 0; p < processes; p++) {
      const n = Math.min(per, managers - p * per);
      const child = spawn(process.execPath, [SIM, String(f.interchange.port), f.keyFile, String(n), String(workersEach), `sim${p}`, String(heartbeatMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      ready.push(new Promise((resolve) => child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve())));
    }
    await Promise.all(ready);
    await until('every simulated manager registered', () => f.interchange.registry.size === managers, { timeoutMs: 60_000, everyMs: 20 });
    const registerS = (performance.now() - t0) / 1000;
    progress(`${managers} managers (${managers * workersEach} workers) registered in ${registerS.toFixed(2)} s`);

    // Dispatch: 200,000 no-op tasks spread over every manager (after a warm-up).
    const noop = jsTask('() => null', [], 'noop');
    const runBatch = async (n: number): Promise<number> => {
      const tasks: TaskEnvelope[] = new Array(n);
      const tag = Math.random().toString(36).slice(2);
      for (let i = 0; i < n; i++) tasks[i] = { id: `${tag}${i}`, fn: noop.fn, payload: noop.payload };
      let done = 0;
      f.interchange.onResults = (rs) => (done += rs.length);
      const start = performance.now();
      f.interchange.submitMany(tasks);
      await until('scale batch', () => done >= n, { timeoutMs: 120_000, everyMs: 20 });
      return n / ((performance.now() - start) / 1000);
    };
    await runBatch(50_000);
    const rate = await runBatch(200_000);
    progress(`dispatch through ${managers} managers: ${rate.toFixed(0)} tasks/s`);

    // One heartbeat round to every manager, timed in-process.
    const hb = f.interchange as unknown as { heartbeat(): void };
    const h0 = performance.now();
    hb.heartbeat();
    const heartbeatRoundMs = performance.now() - h0;
    return {
      sim_managers: managers,
      sim_workers: managers * workersEach,
      sim_register_s: registerS,
      sim_rss_mib: peakRss / 2 ** 20,
      sim_tasks_per_s: rate,
      sim_heartbeat_round_ms: heartbeatRoundMs,
    };
  } finally {
    clearInterval(sampler);
    await f.stop();
    for (const c of children) c.kill('SIGKILL');
  }
}
