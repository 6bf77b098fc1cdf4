/**
 * The two tests that wait out a Slurm minute (the shortest walltime), run at the same time so the suite
 * waits for one minute, not two:
 * - the strategy on the real Slurm test cluster: a long burst on 1-minute blocks. Blocks come up (never
 *   more than max_blocks counting toward the cap), blocks near their walltime are drained and replaced
 *   without any task failing, and once the work is done idle blocks are cancelled down to min_blocks;
 * - jobs that left squeue are classified by sacct (exit code, cancelled from outside, time limit).
 * They do not starve each other: the nodes have 2 CPUs each (6 in all), a block takes 1 CPU and the
 * strategy test holds at most 4 blocks at once (2 counted, 2 draining); the sacct jobs take 1 CPU each,
 * and only one of them (the time-limit job) for more than a moment.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureSlurm } from './cluster-setup.js';
import { Config } from '../../src/config/config.js';
import { SlurmProvider } from '../../providers/slurm.js';
import { LocalChannel } from '../../providers/channels/local.js';
import type { CommandResult, RunOptions } from '../../providers/channels/channel.js';
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

/** A channel on which squeue has forgotten every job (as after MinJobAge): only sacct can tell. */
class ForgetfulChannel extends LocalChannel {
  override async run(command: string, options?: RunOptions): Promise<CommandResult> {
    if (command.startsWith('squeue')) return { code: 1, stdout: '', stderr: 'slurm_load_jobs error: Invalid job id specified\n', timedOut: false };
    return super.run(command, options);
  }
}

describe('tests that wait out a Slurm minute, run together', { concurrency: true }, () => {
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

  test('jobs that left squeue are classified by sacct: exit 3 failed, cancelled from outside, time limit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'funcx-slurm-sacct-'));
    const p = new SlurmProvider({ channel: new ForgetfulChannel({ script_dir: dir }), logger: () => {} });
    const exit3 = sbatch('-p', 'debug', '-o', '/dev/null', '--wrap', 'exit 3');
    const killed = sbatch('-p', 'debug', '-o', '/dev/null', '--wrap', 'sleep 600');
    const late = sbatch('-p', 'debug', '-o', '/dev/null', '--time=1', '--wrap', 'sleep 600');
    await until('the sleeper runs', () => squeueLine(killed).startsWith('R|'), { timeoutMs: 60_000 });
    sh('scancel', [killed]);
    try {
      const final = (await untilValue('sacct knows all three', async () => {
        const got = await p.status([exit3, killed, late]);
        return [...got.values()].every((s) => s.state !== 'unknown' && s.state !== 'ended') ? got : undefined;
      }, { timeoutMs: 150_000, everyMs: 2000 }))!;
      assert.deepEqual([final.get(exit3)?.state, final.get(exit3)?.exitCode], ['failed', 3]);
      assert.equal(final.get(killed)?.state, 'cancelled');
      assert.equal(final.get(late)?.state, 'timeout');
    } finally {
      try { sh('scancel', [killed, late]); } catch { /* gone */ }
    }
  });
});
