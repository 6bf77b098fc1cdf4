/**
 * What the per-user worker pools cost in latency, endpoint side only (no service): the abuse run's honest load
 * (400 tasks/s of `(i) => i`, three users submitting every 100 ms) on its shape (two managers of two workers),
 * once as one user (one pool per manager, as before per-user pools) and once as three users (three pools on two
 * slots per manager), with `--hogs N` busy-loop processes competing for the CPU as the abuse run's attack does.
 * Latency: interchange submit → result, so what differs between the two is the managers' pools alone.
 *
 *   node dist/test/bench/pools-latency.js [--rate 400] [--seconds 10] [--hogs 0]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { startEngine, jsTask } from '../helpers/engine-fixture.js';
import { until } from '../helpers/wait.js';
import { percentile } from './engine-bench.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const rate = arg('rate', 400);
const seconds = arg('seconds', 10);
const hogs = arg('hogs', 0);

const ECHO = '(i) => i';

async function run(users: Array<string | undefined>): Promise<{ p50: number; p99: number; n: number; processes: number }> {
  const f = await startEngine({ heartbeatPeriodMs: 1000, heartbeatThresholdMs: 10_000, othersRunAnyFunction: true });
  try {
    f.startManager(['--max-workers', '2', '--block-id', 'b0']);
    f.startManager(['--max-workers', '2', '--block-id', 'b1']);
    await until('two managers to register', () => f.interchange.registry.size === 2, { timeoutMs: 30_000 });
    // Warm up: every user's first task (its first process start is not what this measures).
    await Promise.all(users.map((u) => f.interchange.submit(jsTask(ECHO, [0], 'echo', u ? { u } : {}))));
    const latencies: number[] = [];
    const pending: Array<Promise<void>> = [];
    const perUser = rate / users.length;
    const start = Date.now();
    const sent = new Map<string | undefined, number>(users.map((u) => [u, 0]));
    while (Date.now() - start < seconds * 1000) {
      for (const u of users) {
        const due = Math.floor(((Date.now() - start) / 1000) * perUser) - sent.get(u)!;
        for (let k = 0; k < due; k++) {
          const t0 = Date.now();
          pending.push(f.interchange.submit(jsTask(ECHO, [k], 'echo', u ? { u } : {})).then(() => void latencies.push(Date.now() - t0)));
        }
        sent.set(u, sent.get(u)! + due);
      }
      await delay(100); // the abuse run's submitters batch every 100 ms
    }
    await Promise.all(pending);
    const processes = f.interchange.registry.all().reduce((n, m) => n + (m.pools ?? []).reduce((s, p) => s + p.running + p.idle, 0), 0);
    latencies.sort((a, b) => a - b);
    return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), n: latencies.length, processes };
  } finally {
    await f.stop();
  }
}

const hogProcs: ChildProcess[] = [];
for (let i = 0; i < hogs; i++) hogProcs.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
try {
  const one = await run([undefined]);
  const three = await run([undefined, 'honest2', 'honest3']);
  const out = {
    rate, seconds, hogs,
    one_user_p50_ms: one.p50, one_user_p99_ms: one.p99,
    three_users_p50_ms: three.p50, three_users_p99_ms: three.p99,
    tasks: one.n + three.n, three_users_processes: three.processes,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  for (const h of hogProcs) h.kill('SIGKILL');
}
