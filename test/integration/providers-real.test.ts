/**
 * One conformance suite run against every batch provider: Slurm and Grid Engine for real (test/cluster/),
 * PBS Pro, Torque, Cobalt and LSF through their stand-ins (test/fixtures/<scheduler>/bin first on PATH, a
 * private FUNCX_FAKE_SCHED_DIR per test). Each provider renders without submitting, submits blocks that
 * really run (a marker file appears), reports pending/running → completed for many blocks in one scheduler
 * call, cancels a running block (its process is gone), and turns a failing scheduler command into a
 * SubmitError (submit, cancel) or 'unknown' with the reason (status), never an exception from status.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { ensureGridEngine, ensureSlurm, fixtureBin, type StandInScheduler } from './cluster-setup.js';
import {
  RecordingChannel, pollStatus, processAlive, readIfThere, setEnv, writeFakeCommands,
} from './provider-harness.js';
import type { ClusterProvider, ClusterProviderOptions } from '../../providers/cluster.js';
import { TERMINAL_BLOCK_STATES, type BlockRequest, type BlockState } from '../../providers/provider.js';
import { SlurmProvider } from '../../providers/slurm.js';
import { GridEngineProvider } from '../../providers/gridengine.js';
import { PBSProProvider } from '../../providers/pbspro.js';
import { TorqueProvider } from '../../providers/torque.js';
import { CobaltProvider } from '../../providers/cobalt.js';
import { LSFProvider } from '../../providers/lsf.js';
import { SubmitError } from '../../src/errors.js';
import { until } from '../helpers/wait.js';

/** A scheduler command's failure as the fake prints it. */
interface Failure {
  stderr: string;
  code: number;
}

interface Case {
  title: string;
  /** Starts the real scheduler (Slurm, Grid Engine); stand-ins need nothing. */
  ready?: () => Promise<void>;
  standIn?: StandInScheduler;
  make: (options: ClusterProviderOptions) => ClusterProvider;
  /** The first line of a rendered script, and a header line only this scheduler writes. */
  header: RegExp;
  submitCmd: string;
  statusCmd: string;
  cancelCmd: string;
  /** Whether the status command names the ids (else it lists all the user's jobs). */
  statusNamesIds: boolean;
  /** How a block that ran to its end is reported: 'completed' where the scheduler says so, 'ended' where the job just leaves the queue and no accounting tells more. @default 'completed' */
  endState?: BlockState;
  jobId: RegExp;
  /** The scheduler's code for a cancelled job, when it has one. */
  cancelledRaw?: RegExp;
  fakeIds: [string, string];
  submitFailure: Failure;
  statusFailure: Failure;
  cancelFailure: Failure;
}

const CASES: Case[] = [
  {
    title: 'SlurmProvider (real Slurm)', ready: ensureSlurm,
    make: (o) => new SlurmProvider({ partition: 'debug', ...o }),
    header: /^#SBATCH --partition=debug$/m, submitCmd: 'sbatch', statusCmd: 'squeue', cancelCmd: 'scancel',
    statusNamesIds: true, jobId: /^\d+$/, cancelledRaw: /^CA$/, fakeIds: ['900001', '900002'],
    submitFailure: { stderr: 'sbatch: error: Batch job submission failed: Invalid partition name specified', code: 1 },
    statusFailure: { stderr: 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)', code: 1 },
    cancelFailure: { stderr: 'scancel: error: Kill job error on job id 900001: Access/permission denied', code: 1 },
  },
  {
    title: 'GridEngineProvider (real Grid Engine)', ready: ensureGridEngine,
    make: (o) => new GridEngineProvider(o),
    header: /^#\$ -S \/bin\/bash$/m, submitCmd: 'qsub', statusCmd: 'qstat', cancelCmd: 'qdel',
    statusNamesIds: false, jobId: /^\d+$/, fakeIds: ['900001', '900002'],
    submitFailure: { stderr: 'Unable to run job: job rejected: the requested queue does not exist.', code: 1 },
    statusFailure: { stderr: 'error: commlib error: got select error (Connection refused)', code: 1 },
    cancelFailure: { stderr: 'error: commlib error: got select error (Connection refused)', code: 1 },
  },
  {
    title: 'PBSProProvider (stand-in)', standIn: 'pbspro', make: (o) => new PBSProProvider(o),
    header: /^#PBS -l select=1:mpiprocs=1$/m, submitCmd: 'qsub', statusCmd: 'qstat', cancelCmd: 'qdel',
    statusNamesIds: true, jobId: /^\d+\.pbs01$/, cancelledRaw: /^F$/, fakeIds: ['900001.pbs01', '900002.pbs01'],
    submitFailure: { stderr: 'qsub: Unknown queue', code: 170 },
    statusFailure: { stderr: 'qstat: cannot connect to server pbs01 (errno=15010)', code: 1 },
    cancelFailure: { stderr: 'qdel: cannot connect to server pbs01 (errno=15010)', code: 1 },
  },
  {
    title: 'TorqueProvider (stand-in)', standIn: 'torque', make: (o) => new TorqueProvider(o),
    header: /^#PBS -l nodes=1:ppn=1$/m, submitCmd: 'qsub', statusCmd: 'qstat', cancelCmd: 'qdel',
    statusNamesIds: true, jobId: /^\d+\.torque01$/, cancelledRaw: /^C$/, fakeIds: ['900001.torque01', '900002.torque01'],
    submitFailure: { stderr: 'qsub: submit error (Bad UID for job execution MSG=ruserok failed validating root/root from vm)', code: 159 },
    statusFailure: { stderr: 'qstat: cannot connect to server torque01 (errno=111) Connection refused', code: 1 },
    cancelFailure: { stderr: 'qdel: cannot connect to server torque01 (errno=111) Connection refused', code: 1 },
  },
  {
    title: 'CobaltProvider (stand-in)', standIn: 'cobalt', make: (o) => new CobaltProvider(o),
    header: /^# Cobalt takes its options on the qsub line: -n 1 -t \d+/m, submitCmd: 'qsub', statusCmd: 'QSTAT_HEADER=JobId:State qstat',
    cancelCmd: 'qdel', statusNamesIds: true, endState: 'ended', jobId: /^\d+$/, fakeIds: ['900001', '900002'],
    submitFailure: { stderr: 'qsub: error: project funcx has no allocation on queue debug-cache-quad', code: 1 },
    statusFailure: { stderr: 'Failed to connect to component queue-manager', code: 1 },
    cancelFailure: { stderr: 'qdel: Failed to connect to component queue-manager', code: 1 },
  },
  {
    title: 'LSFProvider (stand-in)', standIn: 'lsf', make: (o) => new LSFProvider(o),
    header: /^#BSUB -nnodes 1$/m, submitCmd: 'bsub', statusCmd: 'bjobs', cancelCmd: 'bkill',
    statusNamesIds: true, jobId: /^\d+$/, cancelledRaw: /^EXIT$/, fakeIds: ['900001', '900002'],
    submitFailure: { stderr: 'Request aborted by esub. Job not submitted.', code: 255 },
    statusFailure: { stderr: 'LSF daemon (LIM) not responding ... still trying', code: 255 },
    cancelFailure: { stderr: 'LSF daemon (LIM) not responding ... still trying', code: 255 },
  },
];

const request = (blockId: string, command: string): BlockRequest => ({
  blockId, command, jobName: `funcx-conf-${blockId}`, env: { FUNCX_BLOCK: blockId }, nodesPerBlock: 1, walltimeS: 600, // the profile's walltime: '00:10:00'
});

/** A fake command printing `f.stderr` on stderr and exiting with `f.code`. */
const failing = (f: Failure): string => `cat >&2 <<'EOF'\n${f.stderr}\nEOF\nexit ${f.code}`;

/** A folder with only `mkdir` (the provider makes its script folder first): every scheduler command is missing. */
function pathWithoutScheduler(dir: string): string {
  const bin = join(dir, 'bare-bin');
  mkdirSync(bin, { recursive: true });
  symlinkSync('/bin/mkdir', join(bin, 'mkdir'));
  return bin;
}

const root = mkdtempSync(join(tmpdir(), 'funcx-providers-real-'));
after(() => rmSync(root, { recursive: true, force: true }));

for (const c of CASES) {
  describe(c.title, () => {
    let dir = '';
    let restoreEnv: () => void = () => {};
    /** Providers made by the current test, with jobs not yet seen ending (cancelled after the test). */
    let made: Array<{ provider: ClusterProvider; open: Set<string> }> = [];

    before(async () => {
      await c.ready?.();
    });

    beforeEach(() => {
      dir = mkdtempSync(join(root, `${c.standIn ?? c.submitCmd}-`));
      restoreEnv = setEnv({
        PATH: c.standIn ? `${fixtureBin(c.standIn)}:${process.env.PATH}` : process.env.PATH,
        FUNCX_FAKE_SCHED_DIR: join(dir, 'sched'),
        // Long enough that the first status after submit sees the job queued.
        FUNCX_FAKE_SCHED_DELAY: '0.5',
      });
      made = [];
    });

    afterEach(async () => {
      for (const { provider, open } of made) {
        if (open.size > 0) await provider.cancel([...open]).catch(() => {});
        await provider.close();
      }
      restoreEnv();
    });

    const provider = (extra: ClusterProviderOptions = {}): { p: ClusterProvider; channel: RecordingChannel; open: Set<string> } => {
      const channel = new RecordingChannel({ script_dir: join(dir, 'scripts') });
      // Unpaced: these tests count one command per status() call (polite polling is tested in status-pacer.test).
      const p = c.make({ channel, walltime: '00:10:00', max_blocks: 2, max_status_rate: Infinity, ...extra });
      const open = new Set<string>();
      made.push({ provider: p, open });
      return { p, channel, open };
    };

    test('render is a dry run; two blocks run (marker files), one status call covers both: pending/running → completed', async () => {
      const { p, channel, open } = provider();
      const marker = (id: string): string => join(dir, `marker-${id}`);
      const command = (id: string): string => `sleep 2; echo ran-$FUNCX_BLOCK > ${marker(id)}`;

      const rendered = await p.render(request('b1', command('b1')));
      assert.equal(channel.commands.length, 0, `render runs no scheduler command: ${JSON.stringify(channel.commands)}`);
      assert.match(rendered, /^#!\/bin\/bash\n/);
      assert.match(rendered, c.header);
      assert.match(rendered, /^export FUNCX_BLOCK='?b1'?$/m);
      assert.ok(rendered.includes(`echo ran-$FUNCX_BLOCK > ${marker('b1')}`), `the command is in the script:\n${rendered}`);

      const a = await p.submit(request('b1', command('b1')));
      open.add(a.jobId);
      const b = await p.submit(request('b2', command('b2')));
      open.add(b.jobId);
      assert.match(a.jobId, c.jobId);
      assert.match(b.jobId, c.jobId);
      assert.notEqual(a.jobId, b.jobId);
      assert.ok(readFileSync(a.scriptPath, 'utf8').includes(`> ${marker('b1')}`), 'the submitted script is the rendered one');
      const submits = channel.commands.filter((cmd) => cmd.startsWith(c.submitCmd));
      assert.equal(submits.length, 2, `two submit commands: ${JSON.stringify(channel.commands)}`);

      let calls = 0;
      const before = channel.commands.length;
      const trails = await pollStatus(p, [a.jobId, b.jobId], (s) => TERMINAL_BLOCK_STATES.has(s.state), 90_000, () => calls++);
      // One status command per call; accounting may be asked once a job has left the queue.
      const statusCommands = channel.commands.slice(before).filter((cmd) => cmd.startsWith(c.statusCmd));
      assert.equal(statusCommands.length, calls, `one scheduler command per status() call: ${JSON.stringify(channel.commands.slice(before))}`);
      for (const cmd of statusCommands) {
        assert.ok(cmd.startsWith(c.statusCmd), `status ran ${cmd}`);
        if (c.statusNamesIds) assert.ok(cmd.includes(a.jobId) && cmd.includes(b.jobId), `both ids in one command: ${cmd}`);
      }

      const end = c.endState ?? 'completed';
      const order: BlockState[] = ['pending', 'running', end];
      for (const [id, trail] of trails) {
        open.delete(id);
        assert.equal(trail.last.state, end, `${id} ended ${end}: ${trail.states.join(' -> ')} ${JSON.stringify(trail.last)}`);
        assert.ok(['pending', 'running'].includes(trail.states[0]!), `${id} was first seen ${trail.states[0]}`);
        assert.ok(trail.states.includes('running'), `${id} was seen running (the block sleeps 2 s): ${trail.states.join(' -> ')}`);
        // 'unknown' says nothing (the tracker keeps the last known state): a job between the queue and the accounting.
        const ranks = trail.states.filter((s) => s !== 'unknown').map((s) => order.indexOf(s));
        assert.ok(ranks.every((r, i) => r >= 0 && (i === 0 || r > ranks[i - 1]!)), `${id}: states in order: ${trail.states.join(' -> ')}`);
      }
      assert.equal(readIfThere(marker('b1')), 'ran-b1\n');
      assert.equal(readIfThere(marker('b2')), 'ran-b2\n');
    });

    test('a running block is cancelled: status says cancelled and its process is gone', async () => {
      const { p, open } = provider();
      const pidFile = join(dir, 'long.pid');
      const block = await p.submit(request('long', `sleep 300 & echo $! > ${pidFile}; wait`));
      open.add(block.jobId);
      await pollStatus(p, [block.jobId], (s) => s.state === 'running' || TERMINAL_BLOCK_STATES.has(s.state), 60_000);
      await until(`the block to write ${pidFile}`, () => /^\d+\n$/.test(readIfThere(pidFile) ?? ''));
      const pid = Number(readIfThere(pidFile));
      assert.ok(processAlive(pid), `sleep 300 (pid ${pid}) runs inside the block`);

      await p.cancel([block.jobId]);
      const trails = await pollStatus(p, [block.jobId], (s) => TERMINAL_BLOCK_STATES.has(s.state), 60_000);
      open.delete(block.jobId);
      const last = trails.get(block.jobId)!.last;
      assert.equal(last.state, 'cancelled', `after cancel: ${JSON.stringify(last)}`);
      if (c.cancelledRaw) assert.match(last.raw ?? '', c.cancelledRaw);
      await until(`sleep 300 (pid ${pid}) to be gone after the cancel`, () => !processAlive(pid));
    });

    test('submit and cancel commands that fail, print garbage or are missing give SubmitError with stderr and exit code', async () => {
      const { p } = provider();
      const f = c.submitFailure;
      const fakes = writeFakeCommands(join(dir, 'fail-bin'), { [c.submitCmd]: failing(f), [c.cancelCmd]: failing(c.cancelFailure) });
      const outer = process.env.PATH;
      process.env.PATH = `${fakes}:${outer}`;
      try {
        await assert.rejects(p.submit(request('bad', 'true')), (err: unknown) => {
          assert.ok(err instanceof SubmitError, `a SubmitError, got ${String(err)}`);
          assert.equal(err.exitCode, f.code);
          assert.ok(err.stderr.includes(f.stderr), `stderr kept: ${JSON.stringify(err.stderr)}`);
          assert.ok(err.message.includes(f.stderr), `message says why: ${err.message}`);
          assert.ok(err.command.startsWith(c.submitCmd), `command kept: ${err.command}`);
          return true;
        });
        await assert.rejects(p.cancel([c.fakeIds[0]]), (err: unknown) => {
          assert.ok(err instanceof SubmitError, `a SubmitError, got ${String(err)}`);
          assert.equal(err.exitCode, c.cancelFailure.code);
          assert.ok(err.stderr.includes(c.cancelFailure.stderr), `stderr kept: ${JSON.stringify(err.stderr)}`);
          return true;
        });

        writeFakeCommands(fakes, { [c.submitCmd]: "echo 'Welcome to the test cluster.'\necho 'All is well, no id for you.'" });
        await assert.rejects(p.submit(request('garbage', 'true')), (err: unknown) => {
          assert.ok(err instanceof SubmitError, `a SubmitError, got ${String(err)}`);
          assert.equal(err.exitCode, 0);
          assert.match(err.message, /no job id/);
          assert.match(err.message, /no id for you/);
          return true;
        });

        process.env.PATH = pathWithoutScheduler(dir);
        await assert.rejects(p.submit(request('missing', 'true')), (err: unknown) => {
          assert.ok(err instanceof SubmitError, `a SubmitError, got ${String(err)}`);
          assert.equal(err.exitCode, 127);
          assert.match(err.stderr, new RegExp(`${c.submitCmd}: not found`));
          return true;
        });
      } finally {
        process.env.PATH = outer;
      }
    });

    test('status commands that fail, time out or are missing give unknown with the reason, never an exception', async () => {
      const logged: string[] = [];
      const logger = (level: string, message: string): void => void logged.push(`${level} ${message}`);
      const { p } = provider({ logger });
      const slow = provider({ cmd_timeout: 1, logger }).p;
      const f = c.statusFailure;
      // The program itself (Cobalt's command line starts with the QSTAT_HEADER it sets).
      const statusBin = c.statusCmd.split(' ').at(-1)!;
      const fakes = writeFakeCommands(join(dir, 'status-bin'), { [statusBin]: failing(f) });
      const outer = process.env.PATH;
      const expectUnknown = async (what: string, reason: RegExp | string, of = p): Promise<void> => {
        const statuses = await of.status([...c.fakeIds]);
        assert.deepEqual([...statuses.keys()].sort(), [...c.fakeIds].sort(), `${what}: every id answered`);
        for (const [id, st] of statuses) {
          assert.equal(st.state, 'unknown', `${what}: ${id} is ${JSON.stringify(st)}`);
          assert.equal(st.raw, undefined, `${what}: no scheduler code was read`);
          if (typeof reason === 'string') assert.ok(st.detail?.includes(reason), `${what}: detail ${JSON.stringify(st.detail)}`);
          else assert.match(st.detail ?? '', reason, `${what}: detail`);
        }
      };
      try {
        process.env.PATH = `${fakes}:${outer}`;
        await expectUnknown('non-zero exit', f.stderr);
        assert.ok(logged.some((l) => l.startsWith('warn') && l.includes(f.stderr)), `the stderr is logged: ${JSON.stringify(logged)}`);

        writeFakeCommands(fakes, { [statusBin]: 'sleep 20' });
        const started = Date.now();
        await expectUnknown('timeout', /timed out after 1s/, slow);
        assert.ok(Date.now() - started < 8000, `cmd_timeout 1 s is kept (took ${Date.now() - started} ms)`);

        process.env.PATH = pathWithoutScheduler(dir);
        await expectUnknown('missing command', new RegExp(`${statusBin}: not found`));
      } finally {
        process.env.PATH = outer;
      }
    });
  });
}
