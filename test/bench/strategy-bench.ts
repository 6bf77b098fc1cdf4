/**
 * The strategy's figures on the real Slurm test cluster (issue 5): a burst of short tasks and a run longer
 * than a block's walltime. Profile: partition debug, 2 nodes per block, 2 workers per node, blocks 0..2,
 * max_idletime 15 s, period 1 s, walltime_margin 5 s, srun.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Config } from '../../src/config/config.js';
import { SlurmProvider } from '../../providers/slurm.js';
import { LocalChannel } from '../../providers/channels/local.js';
import { SrunLauncher } from '../../launchers/srun.js';
import { Engine } from '../../src/endpoint/engine/engine.js';
import { createLogger } from '../../src/logger.js';
import { jsTask } from '../helpers/engine-fixture.js';
import { until } from '../helpers/wait.js';
import type { ResultEnvelope } from '../../src/protocol/messages.js';

export interface StrategyFigures {
  burst_first_block_s: number;
  burst_makespan_s: number;
  burst_peak_blocks: number;
  burst_scale_in_s: number;
  walltime_makespan_s: number;
  walltime_failed: number;
}

function engineFor(walltime: string): Engine {
  const dir = mkdtempSync(join(tmpdir(), 'funcx-strategy-bench-'));
  const config = new Config({
    engine: { max_workers_per_node: 2, heartbeat_period: 2, heartbeat_threshold: 10, address: '127.0.0.1' },
    provider: new SlurmProvider({
      partition: 'debug',
      nodes_per_block: 2,
      walltime,
      init_blocks: 0,
      min_blocks: 0,
      max_blocks: 2,
      launcher: new SrunLauncher(),
      channel: new LocalChannel({ script_dir: join(dir, 'submit_scripts') }),
    }),
    strategy: { period: 1, max_idletime: 15, walltime_margin: 5 },
  });
  return new Engine({ config, name: 'bench', keysDir: join(dir, 'keys'), log: createLogger('strategy-bench', (process.env.FUNCX_LOG_LEVEL as 'info') || 'warn') });
}

const SLEEP = 'async (ms) => { await new Promise((r) => setTimeout(r, ms)); return ms; }';

async function run(engine: Engine, count: number, ms: number, onTick: () => void): Promise<{ results: ResultEnvelope[]; t0: number; lastAt: number }> {
  const results: ResultEnvelope[] = [];
  let lastAt = 0;
  engine.onResults = (rs) => {
    results.push(...rs);
    lastAt = performance.now();
  };
  const t0 = performance.now();
  engine.submitMany(Array.from({ length: count }, () => jsTask(SLEEP, [ms], `sleep-${ms}`)));
  const timer = setInterval(onTick, 50);
  try {
    await until(`${count} results`, () => results.length >= count, { timeoutMs: 600_000, everyMs: 20 });
  } finally {
    clearInterval(timer);
  }
  return { results, t0, lastAt };
}

export async function benchStrategy(progress: (m: string) => void = () => {}): Promise<StrategyFigures> {
  // Burst: 200 × 0.5 s on up to 2 blocks × 2 nodes × 2 workers (ideal 12.5 s).
  const burst = engineFor('00:10:00');
  await burst.start();
  let firstBlockAt = 0;
  let peak = 0;
  const b = await run(burst, 200, 500, () => {
    const live = burst.tracker.blocks().length;
    if (live > 0 && firstBlockAt === 0) firstBlockAt = performance.now();
    peak = Math.max(peak, burst.tracker.blocks().filter((x) => x.jobId !== null || x.state === 'submitting').length);
  });
  progress(`burst: makespan ${((b.lastAt - b.t0) / 1000).toFixed(1)} s; waiting for scale-in`);
  await until('scale-in to zero blocks', () => burst.tracker.blocks().length === 0, { timeoutMs: 120_000, everyMs: 20 });
  const scaleIn = (performance.now() - b.lastAt) / 1000;
  await burst.stop({ graceMs: 0 });

  // Walltime: 300 × 2 s with 1-minute blocks (ideal 75 s); blocks must be replaced with no task lost.
  const wall = engineFor('00:01:00');
  await wall.start();
  const w = await run(wall, 300, 2000, () => {});
  await wall.stop({ graceMs: 0 });
  const failed = w.results.filter((r) => r.failed).length;
  progress(`walltime: makespan ${((w.lastAt - w.t0) / 1000).toFixed(1)} s, ${failed} failed`);
  return {
    burst_first_block_s: (firstBlockAt - b.t0) / 1000,
    burst_makespan_s: (b.lastAt - b.t0) / 1000,
    burst_peak_blocks: peak,
    burst_scale_in_s: scaleIn,
    walltime_makespan_s: (w.lastAt - w.t0) / 1000,
    walltime_failed: failed,
  };
}
