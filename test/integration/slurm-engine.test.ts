/**
 * The engine on the real Slurm test cluster: a 2-node block started with srun runs a manager on each
 * emulated node, tasks run on both, and the idle block is cancelled.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
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
import { decodeOutcome } from '../../src/protocol/payload.js';
import type { ResultEnvelope } from '../../src/protocol/messages.js';

before(async () => {
  await ensureSlurm();
});

test('a 2-node Slurm block runs managers on n1 and n2 through srun; tasks run on both; idle block is cancelled', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'funcx-slurm-'));
  const config = new Config({
    engine: { max_workers_per_node: 2, heartbeat_period: 1, heartbeat_threshold: 6, address: '127.0.0.1' },
    provider: new SlurmProvider({
      partition: 'debug',
      nodes_per_block: 2,
      // Unpaced (polite polling is tested in status-pacer.test): states are seen at each strategy round.
      max_status_rate: Infinity,
      walltime: '00:10:00',
      max_blocks: 1,
      launcher: new SrunLauncher(),
      channel: new LocalChannel({ script_dir: join(dir, 'submit_scripts') }),
    }),
    strategy: { period: 1, max_idletime: 4, walltime_margin: 5 },
  });
  const engine = new Engine({ config, name: 'slurmtest', keysDir: join(dir, 'keys'), log: createLogger('slurm-engine', 'warn') });
  await engine.start();
  try {
    const results: ResultEnvelope[] = [];
    engine.onResults = (rs) => results.push(...rs);
    const source = 'async () => { await new Promise((r) => setTimeout(r, 300)); return process.env.SLURMD_NODENAME; }';
    engine.submitMany(Array.from({ length: 40 }, () => jsTask(source, [], 'where')));
    await until('the block to be submitted', () => engine.tracker.blocks().some((b) => b.jobId !== null));
    const jobId = engine.tracker.blocks()[0].jobId!;
    assert.match(jobId, /^\d+$/);
    await until('40 results', () => results.length === 40);
    assert.ok(results.every((r) => !r.failed), 'no task failed');
    const nodes = new Set(results.map((r) => (decodeOutcome(r.payload) as { value: string }).value));
    assert.deepEqual([...nodes].sort(), ['n1', 'n2']);
    assert.equal(engine.tracker.blocks().length, 1, 'max_blocks 1: one job');
    await until('the idle block to be cancelled', () => engine.tracker.blocks().length === 0);
    const left = execSync(`squeue --noheader --states=PD,R,CG --job=${jobId} 2>/dev/null || true`).toString().trim();
    assert.equal(left, '', `job ${jobId} is gone from the queue`);
  } finally {
    await engine.stop({ graceMs: 0 });
  }
});
