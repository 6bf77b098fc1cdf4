/**
 * The whole engine through each scheduler the project cannot install, using the stand-ins of
 * test/fixtures/ (their bin folder first on PATH, a private FUNCX_FAKE_SCHED_DIR): PBS Pro + mpiexec,
 * Cobalt + aprun, LSF + jsrun, each with 2-node blocks. The stand-in launcher starts one manager per node
 * (FUNCX_FAKE_NODE n1, n2), JS tasks run on both, and the strategy gives the idle block back: the stand-in
 * records it cancelled and its managers are gone. Grid Engine runs the same way for real (one host).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ensureGridEngine, fixtureBin, type StandInScheduler } from './cluster-setup.js';
import { setEnv, standInJob } from './provider-harness.js';
import { Config } from '../../src/config/config.js';
import type { ExecutionProvider } from '../../providers/provider.js';
import type { ClusterProviderOptions } from '../../providers/cluster.js';
import { PBSProProvider } from '../../providers/pbspro.js';
import { CobaltProvider } from '../../providers/cobalt.js';
import { LSFProvider } from '../../providers/lsf.js';
import { GridEngineProvider } from '../../providers/gridengine.js';
import { LocalChannel } from '../../providers/channels/local.js';
import { MpiExecLauncher } from '../../launchers/mpiexec.js';
import { AprunLauncher } from '../../launchers/aprun.js';
import { JsrunLauncher } from '../../launchers/jsrun.js';
import { Engine } from '../../src/endpoint/engine/engine.js';
import { createLogger } from '../../src/logger.js';
import { decodeOutcome } from '../../src/protocol/payload.js';
import type { ResultEnvelope } from '../../src/protocol/messages.js';
import { jsTask } from '../helpers/engine-fixture.js';
import { until } from '../helpers/wait.js';

const root = mkdtempSync(join(tmpdir(), 'funcx-providers-engine-'));
after(() => rmSync(root, { recursive: true, force: true }));

interface EngineCase {
  title: string;
  standIn?: StandInScheduler;
  ready?: () => Promise<void>;
  make: (options: ClusterProviderOptions) => ExecutionProvider;
  nodes: number;
  /** The variable a job's processes see holding the scheduler's job id. */
  jobIdVar: string;
  jobId: RegExp;
  tasks: number;
  /** After the strategy's cancel: what the scheduler itself says about the job (throws when wrong). */
  confirmGone: (jobId: string, schedDir: string) => void | Promise<void>;
  /** How soon after the cancel is confirmed the block's managers must be gone from the interchange. */
  managersLeave: { what: string; withinMs: number };
}

/**
 * The stand-ins end a job with SIGTERM (then SIGKILL), as PBS, Cobalt and LSF do: a manager says bye on
 * SIGTERM (src/worker/manager.ts), so the interchange forgets it at once, not after heartbeat_threshold
 * (6 s here) of silence, and tasks it held would be retried at once.
 */
const SAY_BYE = { what: "the cancelled block's managers to say bye (SIGTERM), well before heartbeat_threshold", withinMs: 2_000 };

/** Run a scheduler command with the current PATH (the stand-in first). */
const sched = (cmd: string, args: string[]): string => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string };
    return `exit ${e.status}\n${e.stdout ?? ''}${e.stderr ?? ''}`;
  }
};

const standInCancelled = (jobId: string, schedDir: string): void => {
  assert.equal(standInJob(schedDir, jobId).state, 'cancelled', `the stand-in recorded job ${jobId} as cancelled`);
};

const CASES: EngineCase[] = [
  {
    title: 'PBSProProvider + MpiExecLauncher (stand-in), 2-node blocks', standIn: 'pbspro', nodes: 2, tasks: 20,
    make: (o) => new PBSProProvider({ ...o, launcher: new MpiExecLauncher() }),
    jobIdVar: 'PBS_JOBID', jobId: /^\d+\.pbs01$/, managersLeave: SAY_BYE,
    confirmGone: (jobId, schedDir) => {
      standInCancelled(jobId, schedDir);
      const doc = JSON.parse(sched('qstat', ['-x', '-f', '-F', 'json', jobId])) as { Jobs?: Record<string, { job_state: string; Exit_status?: number }> };
      const job = doc.Jobs?.[jobId];
      assert.equal(job?.job_state, 'F', `qstat -x says finished: ${JSON.stringify(job)}`);
      assert.equal(job?.Exit_status, 271, 'Exit_status 271: killed by qdel');
    },
  },
  {
    title: 'CobaltProvider + AprunLauncher (stand-in), 2-node blocks', standIn: 'cobalt', nodes: 2, tasks: 20,
    make: (o) => new CobaltProvider({ ...o, launcher: new AprunLauncher() }),
    jobIdVar: 'COBALT_JOBID', jobId: /^\d+$/, managersLeave: SAY_BYE,
    confirmGone: (jobId, schedDir) => {
      standInCancelled(jobId, schedDir);
      const listed = sched('qstat', ['-u', userInfo().username]);
      assert.ok(!new RegExp(`^${jobId}\\s`, 'm').test(listed), `qstat no longer lists ${jobId}:\n${listed}`);
    },
  },
  {
    title: 'LSFProvider + JsrunLauncher (stand-in), 2-node blocks', standIn: 'lsf', nodes: 2, tasks: 20,
    make: (o) => new LSFProvider({ ...o, launcher: new JsrunLauncher() }),
    jobIdVar: 'LSB_JOBID', jobId: /^\d+$/, managersLeave: SAY_BYE,
    confirmGone: (jobId, schedDir) => {
      standInCancelled(jobId, schedDir);
      assert.equal(sched('bjobs', ['-noheader', '-o', 'jobid stat exit_code', jobId]).trim(), `${jobId} EXIT 130`, 'bkill ended it');
    },
  },
  {
    title: 'GridEngineProvider (real Grid Engine), 1-node blocks', ready: ensureGridEngine, nodes: 1, tasks: 10,
    make: (o) => new GridEngineProvider(o),
    jobIdVar: 'JOB_ID', jobId: /^\d+$/,
    // qdel makes Grid Engine SIGKILL the job (queue terminate_method NONE, the default): no bye is possible,
    // so the interchange forgets the managers after heartbeat_threshold (6 s) of silence.
    managersLeave: { what: "the cancelled block's managers to be declared lost after heartbeat_threshold", withinMs: 10_000 },
    confirmGone: async (jobId) => {
      // qdel of a running job shows it as "dr" (deleting) for a moment, then qstat drops it.
      const row = new RegExp(`^\\s*${jobId}\\s.*\\s(\\S+)\\s+\\d\\d/\\d\\d/\\d{4}`, 'm');
      let listed = sched('qstat', []);
      assert.ok(!row.test(listed) || row.exec(listed)![1]!.startsWith('d'), `qstat shows ${jobId} deleting or gone:\n${listed}`);
      await until(`qstat to no longer list ${jobId}`, () => !row.test((listed = sched('qstat', []))), { everyMs: 250 });
    },
  },
];

for (const c of CASES) {
  describe(c.title, () => {
    test(`${c.tasks} JS tasks run on ${c.nodes === 2 ? 'both nodes (n1 and n2)' : 'the block'}; the idle block is cancelled by the strategy`, async () => {
      await c.ready?.();
      const dir = mkdtempSync(join(root, `${c.standIn ?? 'gridengine'}-`));
      const schedDir = join(dir, 'sched');
      const restoreEnv = setEnv({
        PATH: c.standIn ? `${fixtureBin(c.standIn)}:${process.env.PATH}` : process.env.PATH,
        FUNCX_FAKE_SCHED_DIR: schedDir,
      });
      const config = new Config({
        engine: { max_workers_per_node: 2, heartbeat_period: 1, heartbeat_threshold: 6, address: '127.0.0.1' },
        provider: c.make({
          nodes_per_block: c.nodes,
          walltime: '00:10:00',
          max_blocks: 1,
          // Unpaced (polite polling is tested in status-pacer.test): the cancel of the idle block is confirmed
          // at a strategy round, not up to 5 s later at the default 12 status commands a minute.
          max_status_rate: Infinity,
          channel: new LocalChannel({ script_dir: join(dir, 'submit_scripts') }),
        }),
        strategy: { period: 1, max_idletime: 3, walltime_margin: 5 },
      });
      const engine = new Engine({ config, name: `${c.standIn ?? 'sge'}test`, keysDir: join(dir, 'keys'), log: createLogger(`${c.title.split(' ')[0]}`, 'warn') });
      await engine.start();
      try {
        const results: ResultEnvelope[] = [];
        engine.onResults = (rs) => results.push(...rs);
        const source = `async () => { await new Promise((r) => setTimeout(r, 400)); return { node: process.env.FUNCX_FAKE_NODE ?? null, job: process.env.${c.jobIdVar} ?? null }; }`;
        engine.submitMany(Array.from({ length: c.tasks }, () => jsTask(source, [], `where-${c.jobIdVar}`)));
        await until('the block to be submitted', () => engine.tracker.blocks().some((b) => b.jobId !== null));
        const jobId = engine.tracker.blocks()[0]!.jobId!;
        assert.match(jobId, c.jobId);

        await until(`${c.tasks} results`, () => results.length === c.tasks);
        const failed = results.filter((r) => r.failed);
        assert.equal(failed.length, 0, `no task failed: ${JSON.stringify(failed.slice(0, 2).map((r) => decodeOutcome(r.payload)))}`);
        const values = results.map((r) => (decodeOutcome(r.payload) as { value: { node: string | null; job: string | null } }).value);
        assert.deepEqual([...new Set(values.map((v) => v.job))], [jobId], `every task ran inside job ${jobId} (${c.jobIdVar})`);
        if (c.standIn) {
          const nodes = [...new Set(values.map((v) => v.node))].sort();
          assert.deepEqual(nodes, Array.from({ length: c.nodes }, (_, i) => `n${i + 1}`), 'tasks ran on every node of the block');
        }
        assert.equal(engine.tracker.blocks().length + engine.tracker.history().length, 1, 'max_blocks 1: one job');
        assert.equal(engine.interchange.registry.all().length, c.nodes, 'one manager per node registered');

        await until('the idle block to be cancelled and confirmed by status', () => engine.tracker.blocks().length === 0);
        const ended = engine.tracker.history().find((b) => b.jobId === jobId);
        assert.equal(ended?.state, 'cancelled', `the block ended cancelled: ${JSON.stringify(ended)}`);
        assert.equal(ended?.phase, 'cancelling', 'the strategy asked for the cancel');
        assert.equal(engine.tracker.missing().length, 0, 'no missing block');
        await c.confirmGone(jobId, schedDir);
        await until(c.managersLeave.what, () => engine.interchange.registry.all().length === 0, { timeoutMs: c.managersLeave.withinMs });
      } finally {
        await engine.stop({ graceMs: 0 });
        restoreEnv();
      }
    });
  });
}
