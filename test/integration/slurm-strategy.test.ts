/**
 * The strategy on the real Slurm test cluster: a long burst on 1-minute blocks. Blocks come up (never more
 * than max_blocks counting toward the cap), blocks near their walltime are drained and replaced without
 * any task failing, and once the work is done idle blocks are cancelled down to min_blocks.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureSlurm } from './cluster-setup.js';
import { Config } from '../../src/config/config.js';
import { SlurmProvider } from '../../providers/slurm.js';
import { LocalChannel } from '../../providers/channels/local.js';
import { SrunLauncher } from '../../launchers/srun.js';
import { Engine } from '../../src/endpoint/engine/engine.js';
import { createLogger } from '../../src/logger.js';
import { jsTask } from '../helpers/engine-fixture.js';
import { until } from '../helpers/wait.js';
import type { ResultEnvelope } from '../../src/protocol/messages.js';

before(async () => {
  await ensureSlurm();
});

test('1-minute blocks are replaced before their walltime with no task failing; idle blocks go down to min_blocks', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'funcx-slurm-strategy-'));
  const config = new Config({
    engine: { max_workers_per_node: 2, heartbeat_period: 1, heartbeat_threshold: 6, address: '127.0.0.1' },
    provider: new SlurmProvider({
      partition: 'debug',
      nodes_per_block: 1,
      walltime: '00:01:00',
      init_blocks: 1,
      min_blocks: 1,
      max_blocks: 2,
      launcher: new SrunLauncher(),
      channel: new LocalChannel({ script_dir: join(dir, 'submit_scripts') }),
    }),
    strategy: { period: 1, max_idletime: 3, walltime_margin: 5 },
  });
  const engine = new Engine({ config, name: 'wall', keysDir: join(dir, 'keys'), log: createLogger('slurm-strategy', 'warn') });
  // Count finished strategy rounds (the interval calls `this.tick()`, so the wrapper sees every round).
  let ticks = 0;
  const tick = engine.strategy.tick.bind(engine.strategy);
  engine.strategy.tick = async () => {
    const decision = await tick();
    if (decision !== null) ticks++;
    return decision;
  };
  await engine.start();
  try {
    const results: ResultEnvelope[] = [];
    engine.onResults = (rs) => results.push(...rs);
    let peakCounted = 0;
    const seenJobs = new Set<string>();
    const watch = setInterval(() => {
      const blocks = engine.tracker.blocks();
      peakCounted = Math.max(peakCounted, blocks.filter((b) => b.drainingSince === null && b.phase !== 'cancelling').length);
      for (const b of blocks) if (b.jobId) seenJobs.add(b.jobId);
    }, 50);
    // 4 workers at most; 130 tasks of 2 s keep them busy past one block's walltime.
    engine.submitMany(Array.from({ length: 130 }, () => jsTask('async (ms) => { await new Promise((r) => setTimeout(r, ms)); return ms; }', [2000], 'two-seconds')));
    await until('all 130 results', () => results.length === 130, { timeoutMs: 240_000 });
    const failed = results.filter((r) => r.failed);
    assert.equal(failed.length, 0, `${failed.length} task(s) failed`);
    assert.ok(seenJobs.size >= 3, `blocks were replaced: ${seenJobs.size} Slurm jobs used`);
    assert.ok(peakCounted <= 2, `at most max_blocks (2) blocks counted at once, saw ${peakCounted}`);
    // Scale in: down to min_blocks (1), and it stays there.
    await until('scale-in to min_blocks', () => engine.tracker.blocks().filter((b) => b.phase !== 'cancelling').length === 1);
    // Stays there: enough strategy rounds for the idle block to be held and cancelled (max_idletime 3 s,
    // period 1 s) if min_blocks were not kept. A count of rounds, not a time.
    const from = ticks;
    await until('six more strategy rounds', () => ticks >= from + 6);
    assert.equal(engine.tracker.blocks().filter((b) => b.phase !== 'cancelling').length, 1, 'min_blocks is kept');
    clearInterval(watch);
  } finally {
    await engine.stop({ graceMs: 0 });
  }
});
