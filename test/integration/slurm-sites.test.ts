/**
 * Real sites on the real Slurm test cluster (with slurmdbd on MariaDB): a block the scheduler holds is not
 * capacity and is replaced; a block pending for a reason that cannot change pauses submission after the
 * second one. (Jobs that left squeue, classified by sacct, are in slurm-strategy.test.ts: its time-limit job
 * waits out a Slurm minute, run there alongside the strategy's 1-minute blocks.)
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
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
import { until, untilValue } from '../helpers/wait.js';
import type { ResultEnvelope } from '../../src/protocol/messages.js';

before(async () => {
  await ensureSlurm();
});

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' }).trim();
const sbatch = (...args: string[]): string => /Submitted batch job (\d+)/.exec(sh('sbatch', args))![1]!;
const squeueLine = (id: string): string => sh('squeue', ['--noheader', '--states=all', `--format=%t|%r`, `--job=${id}`]);

function engineFor(dir: string, provider: Record<string, unknown>, strategy: Record<string, unknown> = {}): Engine {
  const config = new Config({
    engine: { max_workers_per_node: 1, heartbeat_period: 1, heartbeat_threshold: 6, address: '127.0.0.1' },
    provider: new SlurmProvider({
      // Unpaced (polite polling is tested in status-pacer.test): states are seen at each strategy round.
      nodes_per_block: 1, walltime: '00:05:00', max_blocks: 1, max_status_rate: Infinity, launcher: new SrunLauncher(),
      channel: new LocalChannel({ script_dir: join(dir, 'submit_scripts') }), ...provider,
    }),
    strategy: { period: 1, max_idletime: 60, walltime_margin: 5, ...strategy },
  });
  return new Engine({ config, name: 'sites', keysDir: join(dir, 'keys'), log: createLogger('slurm-sites', 'warn') });
}

test('a block held with scontrol hold is not capacity: cancelled, said why, and replaced; the work completes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'funcx-slurm-held-'));
  // Another user's job holds every node, so our block waits in the queue long enough to be held.
  const blocker = sbatch('--exclusive', '-N', '3', '-p', 'debug', '-o', '/dev/null', '--wrap', 'sleep 600');
  await until('the blocker holds every node', () => squeueLine(blocker).startsWith('R|'), { timeoutMs: 60_000 });
  const engine = engineFor(dir, { partition: 'debug' });
  await engine.start();
  try {
    const results: ResultEnvelope[] = [];
    engine.onResults = (rs) => results.push(...rs);
    engine.submitMany(Array.from({ length: 3 }, () => jsTask('async () => 7', [], 'seven')));
    const first = (await untilValue('block 0 submitted', () => engine.tracker.get('0')?.jobId ?? undefined))!;
    sh('scontrol', ['hold', first]);
    await until('squeue says held', () => /^PD\|JobHeld(User|Admin)$/.test(squeueLine(first)));
    const second = (await untilValue('a replacement block', () => engine.tracker.blocks().find((b) => b.blockId !== '0')?.jobId ?? undefined, { timeoutMs: 60_000 }))!;
    assert.notEqual(second, first);
    const ended = engine.tracker.history().find((b) => b.blockId === '0');
    assert.equal(ended?.state, 'cancelled', `block 0 ended ${ended?.state}`);
    assert.match(ended?.cancelReason ?? '', /held by the scheduler \(JobHeld(User|Admin)\)/);
    sh('scancel', [blocker]);
    await until('the three results', () => results.length === 3, { timeoutMs: 120_000 });
    assert.ok(results.every((r) => !r.failed), 'no task failed');
  } finally {
    try { sh('scancel', [blocker]); } catch { /* gone */ }
    await engine.stop({ graceMs: 0 });
  }
});

test('a block pending for a reason that cannot change (PartitionNodeLimit) is cancelled; the second pauses submission', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'funcx-slurm-stuck-'));
  // Partition `tiny` allows one node per job; our blocks ask for two.
  const engine = engineFor(dir, { partition: 'tiny', nodes_per_block: 2 });
  await engine.start();
  try {
    engine.submitMany([jsTask('async () => 1', [], 'one')]);
    const health = (await untilValue('submissions paused', () => {
      const h = engine.tracker.submitHealth();
      return h.paused ? h : undefined;
    }, { timeoutMs: 90_000 }))!;
    // Slurm names this request PartitionNodeLimit or PartitionConfig, depending on when it last looked.
    assert.match(health.pausedReason ?? '', /Partition(NodeLimit|Config)/);
    const ended = engine.tracker.history();
    assert.ok(ended.length >= 1 && ended.every((b) => /Partition(NodeLimit|Config)/.test(b.cancelReason ?? '')), JSON.stringify(ended.map((b) => b.cancelReason)));
    const submitted = engine.tracker.blocks().length + ended.length;
    assert.equal(submitted, 2, 'two blocks tried, no third while paused');
  } finally {
    await engine.stop({ graceMs: 0 });
  }
});
