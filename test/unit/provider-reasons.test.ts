/**
 * Held, stuck and finished jobs as real schedulers print them: reasons, holds, accounting, the site-proof
 * fallbacks, and status outputs that must not be read as "everything finished".
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Channel, CommandResult, RunOptions } from '../../providers/channels/channel.js';
import type { Launcher } from '../../launchers/launcher.js';
import { SlurmProvider, parseSbatch } from '../../providers/slurm.js';
import { PBSProProvider } from '../../providers/pbspro.js';
import { TorqueProvider } from '../../providers/torque.js';
import { CobaltProvider } from '../../providers/cobalt.js';
import { LSFProvider } from '../../providers/lsf.js';
import { GridEngineProvider, parseQacct } from '../../providers/gridengine.js';
import { sgeXml } from '../helpers/sge-xml.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseBhist } from '../../providers/bhist.js';
import { until } from '../helpers/wait.js';

type Reply = Partial<CommandResult>;

class Fake implements Channel {
  readonly kind = 'fake';
  readonly isRemote = false;
  readonly scriptDir = '/tmp/fake-scripts';
  readonly commands: string[] = [];
  readonly envs: Array<Record<string, string> | undefined> = [];
  private rules: Array<[RegExp, Reply]> = [];
  on(pattern: RegExp, reply: Reply): this {
    this.rules.unshift([pattern, reply]);
    return this;
  }
  async run(command: string, options?: RunOptions): Promise<CommandResult> {
    this.commands.push(command);
    this.envs.push(options?.env);
    const reply = this.rules.find(([re]) => re.test(command))?.[1] ?? (/^mkdir /.test(command) ? {} : { code: 127, stderr: 'sh: not found' });
    return { code: 0, stdout: '', stderr: '', timedOut: false, ...reply };
  }
  async writeFile(path: string): Promise<string> { return path; }
  async readFile(): Promise<Buffer> { return Buffer.from(''); }
  async exposePort(host: string, port: number) { return { host, port }; }
  async close(): Promise<void> {}
}

const launcher: Launcher = { name: 'fake', wrap: (cmd: string) => cmd };
const request = { blockId: '0', command: 'funcx-manager', jobName: 'funcx-block-0', nodesPerBlock: 1, walltimeS: 1800 };
const quiet = () => {};

describe('slurm: held, stuck and reasons from squeue %r', () => {
  test('the reason tells held from pending; reasons that waiting cannot change are stuck', async () => {
    const ch = new Fake().on(/^squeue/, {
      // Rows as squeue 22.05 prints them for --format='%i|%t|%r'.
      stdout: [
        '41|PD|Priority', '42|PD|JobHeldUser', '43|PD|JobHeldAdmin', '44|PD|launch failed requeued held',
        '45|PD|PartitionNodeLimit', '46|PD|Resources', '47|PD|ReqNodeNotAvail, UnavailableNodes:n[1-2]',
        '48|PD|QOSMaxJobsPerUserLimit', '49|PD|InvalidAccount', '50|R|None', '51|PD|PartitionTimeLimit',
        '52|PD|DependencyNeverSatisfied', '53|PD|BadConstraints', '54|PD|InvalidQOS',
      ].join('\n'),
    });
    const p = new SlurmProvider({ channel: ch, launcher, logger: quiet, max_status_rate: Infinity });
    const ids = Array.from({ length: 14 }, (_, i) => String(41 + i));
    const got = await p.status(ids);
    assert.match(ch.commands[0]!, /^squeue --noheader --format='%i\|%t\|%r' --states=all --job=41,42/);
    assert.equal(ch.envs[0]?.LC_ALL, 'C');
    const view = (id: string) => [got.get(id)?.state, got.get(id)?.reason, got.get(id)?.stuck ?? false];
    assert.deepEqual(view('41'), ['pending', 'Priority', false]);
    assert.deepEqual(view('42'), ['held', 'JobHeldUser', false]);
    assert.deepEqual(view('43'), ['held', 'JobHeldAdmin', false]);
    assert.deepEqual(view('44'), ['held', 'launch failed requeued held', false]);
    assert.deepEqual(view('45'), ['pending', 'PartitionNodeLimit', true]);
    assert.deepEqual(view('46'), ['pending', 'Resources', false]);
    assert.deepEqual(view('47'), ['pending', 'ReqNodeNotAvail, UnavailableNodes:n[1-2]', true]);
    assert.deepEqual(view('48'), ['pending', 'QOSMaxJobsPerUserLimit', false]);
    assert.deepEqual(view('49'), ['pending', 'InvalidAccount', true]);
    assert.deepEqual(view('50'), ['running', undefined, false]);
    for (const id of ['51', '52', '53', '54']) assert.equal(got.get(id)?.stuck, true, id);
  });

  test('no row, or a line it was not asked for, is a failed poll, not "every job finished"', async () => {
    const ch = new Fake().on(/^squeue/, { stdout: '' });
    const p = new SlurmProvider({ channel: ch, launcher, logger: quiet, max_status_rate: Infinity });
    const none = await p.status(['1', '2']);
    assert.deepEqual([...none.values()].map((s) => s.state), ['unknown', 'unknown']);
    assert.match(none.get('1')!.detail!, /no row/);
    ch.on(/^squeue/, { stdout: '             JOBID PARTITION     NAME     USER ST       TIME  NODES NODELIST(REASON)\n' });
    const garbage = await p.status(['1']);
    assert.equal(garbage.get('1')?.state, 'unknown');
    assert.ok(!ch.commands.some((c) => c.startsWith('sacct')), 'no accounting asked on a failed poll');
  });

  test('a job that left squeue is classified by sacct; without accounting it is ended, never completed', async () => {
    const ch = new Fake()
      .on(/^squeue/, { code: 1, stderr: 'slurm_load_jobs error: Invalid job id specified\n' })
      .on(/^sacct/, {
        stdout: ['71|FAILED|3:0', '72|TIMEOUT|0:0', '73|CANCELLED by 0|0:0', '74|NODE_FAIL|0:0', '75|OUT_OF_MEMORY|0:125', '76|COMPLETED|0:0', '77|COMPLETED|2:0'].join('\n'),
      });
    const p = new SlurmProvider({ channel: ch, launcher, logger: quiet, max_status_rate: Infinity });
    const got = await p.status(['71', '72', '73', '74', '75', '76', '77', '78']);
    assert.equal(ch.commands[1], 'sacct -X -n -P -o JobID,State,ExitCode -j 71,72,73,74,75,76,77,78');
    assert.deepEqual(Object.fromEntries([...got].map(([id, s]) => [id, s.state])), {
      71: 'failed', 72: 'timeout', 73: 'cancelled', 74: 'node_fail', 75: 'out_of_memory', 76: 'completed', 77: 'failed', 78: 'unknown',
    });
    // Accounting answered but does not know 78 yet: it waits (the tracker keeps the last known state).
    assert.equal(got.get('78')?.raw, 'left the queue');
    assert.equal(got.get('71')?.exitCode, 3);
    ch.on(/^sacct/, { code: 1, stderr: 'Slurm accounting storage is disabled\n' });
    const off = await p.status(['71']);
    assert.equal(off.get('71')?.state, 'ended');
    assert.equal(off.get('71')?.detail, 'unknown: left the queue');
  });

  test('multi-cluster: "on cluster X" keeps the cluster, and every command names it with -M', async () => {
    assert.equal(parseSbatch('Submitted batch job 12 on cluster west\n'), '12.west');
    assert.equal(parseSbatch('sbatch: warning: can not set memory\nSubmitted batch job 13\n'), '13');
    assert.equal(parseSbatch('14;east\n'), '14.east');
    const ch = new Fake().on(/^sbatch/, { stdout: 'Submitted batch job 12 on cluster west\n' });
    const p = new SlurmProvider({ channel: ch, launcher, logger: quiet, max_status_rate: Infinity, scheduler_options: '#SBATCH --clusters=west' });
    const block = await p.submit(request);
    assert.equal(block.jobId, '12.west');
    ch.on(/^squeue -M west /, { stdout: 'CLUSTER: west\n12|PD|JobHeldAdmin\n' });
    const got = await p.status(['12.west']);
    assert.ok(ch.commands.includes("squeue -M west --noheader --format='%i|%t|%r' --states=all --job=12"), ch.commands.join('\n'));
    assert.equal(got.get('12.west')?.state, 'held');
    ch.on(/^scancel/, {});
    await p.cancel(['12.west']);
    assert.equal(ch.commands.at(-1), 'scancel -M west 12');
    const named = new SlurmProvider({ channel: ch.on(/^sbatch/, { stdout: 'Submitted batch job 20 on cluster east\n' }), launcher, logger: quiet, max_status_rate: Infinity, clusters: 'east' });
    assert.equal((await named.submit(request)).jobId, '20.east');
    assert.match(ch.commands.at(-1)!, /^sbatch -M east /);
  });
});

describe('pbs pro and torque: held, comments, exit statuses, text fallback', () => {
  test('a comment is the reason; "Can Never Run" is stuck; H is held', async () => {
    const jobs = {
      '1.s': { job_state: 'Q', comment: 'Not Running: Insufficient amount of resource: ncpus (R: 64 A: 32 T: 32)' },
      '2.s': { job_state: 'Q', comment: 'Can Never Run: Insufficient amount of queue resource: nodect (R: 8 A: 4 T: 4)' },
      '3.s': { job_state: 'H', comment: 'Job held by alice on Wed Dec  2 10:00:00 2026' },
      '4.s': { job_state: 'F', Exit_status: -27 },
    };
    const ch = new Fake().on(/^qstat/, { stdout: JSON.stringify({ timestamp: 1, pbs_version: '2022.1.1', Jobs: jobs }) });
    const p = new PBSProProvider({ channel: ch, launcher, logger: quiet, max_status_rate: Infinity });
    const got = await p.status(Object.keys(jobs));
    assert.deepEqual([got.get('1.s')?.state, got.get('1.s')?.stuck ?? false], ['pending', false]);
    assert.match(got.get('1.s')!.reason!, /Insufficient amount of resource: ncpus/);
    assert.deepEqual([got.get('2.s')?.state, got.get('2.s')?.stuck], ['pending', true]);
    assert.equal(got.get('3.s')?.state, 'held');
    assert.match(got.get('3.s')!.reason!, /Job held by alice/);
    assert.equal(got.get('4.s')?.state, 'out_of_memory');
  });

  test('a PBS without -F json is asked for qstat -f text from then on', async () => {
    const ch = new Fake().on(/^qstat -x -f -F json/, { code: 2, stderr: "qstat: invalid option -- 'F'\nusage: qstat [-f] ...\n" });
    const p = new PBSProProvider({ channel: ch, launcher, logger: quiet, max_status_rate: Infinity });
    assert.equal((await p.status(['7.s'])).get('7.s')?.state, 'unknown');
    ch.on(/^qstat -x -f 7\.s$/, { stdout: 'Job Id: 7.s\n    Job_Name = funcx-block-0\n    job_state = F\n    Exit_status = -29\n' });
    assert.equal((await p.status(['7.s'])).get('7.s')?.state, 'timeout');
  });

  test('an id qstat says nothing about is not "finished"; one it calls unknown has left', async () => {
    const ch = new Fake().on(/^qstat/, { stdout: JSON.stringify({ timestamp: 1, pbs_version: '2022.1.1', pbs_server: 's' }) });
    const p = new PBSProProvider({ channel: ch, launcher, logger: quiet, max_status_rate: Infinity });
    assert.equal((await p.status(['8.s'])).get('8.s')?.state, 'unknown');
    ch.on(/^qstat/, { code: 153, stderr: 'qstat: Unknown Job Id 8.s\n' });
    assert.equal((await p.status(['8.s'])).get('8.s')?.state, 'ended');
    ch.on(/^qstat/, { stdout: 'Welcome to the cluster\n' });
    assert.equal((await p.status(['8.s'])).get('8.s')?.state, 'unknown');
  });

  test('torque: qstat -f gives held, comment and exit_status', async () => {
    const ch = new Fake().on(/^qstat -f/, {
      stdout: [
        'Job Id: 1.tq', '    job_state = H', '',
        'Job Id: 2.tq', '    job_state = C', '    exit_status = -11', '',
        'Job Id: 3.tq', '    job_state = C', '    exit_status = 0', '',
        'Job Id: 4.tq', '    job_state = C', '    exit_status = 1', '',
      ].join('\n'),
    });
    const p = new TorqueProvider({ channel: ch, launcher, logger: quiet, max_status_rate: Infinity });
    const got = await p.status(['1.tq', '2.tq', '3.tq', '4.tq']);
    assert.deepEqual([...got.values()].map((s) => s.state), ['held', 'timeout', 'completed', 'failed']);
    assert.equal(got.get('4.tq')?.exitCode, 1);
  });
});

describe('lsf: reasons, zombies, preambles and the bjobs -w fallback', () => {
  test('pending reasons, PSUSP held, ZOMBI failed, exit codes; preambles on either stream are skipped', async () => {
    const ch = new Fake().on(/^bjobs/, {
      stdout: [
        'LSF is processing your request. Please wait ...',
        '101|PEND|-|New job is waiting for scheduling;',
        '102|PSUSP|-|The job was suspended by the user while pending;',
        '103|ZOMBI|-|-',
        '104|EXIT|3|-',
        '105|PEND|-|Dependency condition invalid or never satisfied;',
      ].join('\n'),
      stderr: 'LSF is processing your request. Please wait ...\n',
    });
    const p = new LSFProvider({ channel: ch, launcher, logger: quiet, max_status_rate: Infinity });
    const got = await p.status(['101', '102', '103', '104', '105']);
    assert.deepEqual([got.get('101')?.state, got.get('101')?.reason], ['pending', 'New job is waiting for scheduling']);
    assert.deepEqual([got.get('102')?.state, got.get('102')?.reason], ['held', 'The job was suspended by the user while pending']);
    assert.equal(got.get('103')?.state, 'failed');
    assert.deepEqual([got.get('104')?.state, got.get('104')?.exitCode], ['failed', 3]);
    assert.equal(got.get('105')?.stuck, true);
  });

  test('an LSF without -o is asked with bjobs -w from then on; job names with spaces are fine', async () => {
    const ch = new Fake().on(/^bjobs -noheader -o/, { code: 255, stderr: '-o: Illegal option.\nUsage: bjobs ...\n' });
    const p = new LSFProvider({ channel: ch, launcher, logger: quiet, max_status_rate: Infinity });
    assert.equal((await p.status(['5'])).get('5')?.state, 'unknown');
    ch.on(/^bjobs -w 5 6$/, {
      stdout: 'JOBID   USER    STAT  QUEUE      FROM_HOST   EXEC_HOST   JOB_NAME   SUBMIT_TIME\n5       alice   PSUSP normal     login1      -           my job name Dec  2 10:00\n',
      stderr: 'Job <6> is not found\n', code: 255,
    });
    const got = await p.status(['5', '6']);
    assert.equal(got.get('5')?.state, 'held');
    assert.equal(got.get('6')?.state, 'ended');
  });
});

describe('slurm: when a block would start, asked without submitting', () => {
  test('sbatch --test-only says when (local time, whatever SLURM_TIME_FORMAT); nothing said is undefined', async () => {
    const ch = new Fake().on(/sbatch --test-only/, { stderr: 'sbatch: Job 3983 to start at 2026-12-02T16:41:00 using 2 processors on nodes n3 in partition debug\n' });
    const p = new SlurmProvider({ channel: ch, launcher, logger: quiet, partition: 'debug' });
    const request = { blockId: 'probe', command: 'funcx-manager', jobName: 'funcx-block-probe', nodesPerBlock: 1, walltimeS: 600 };
    assert.equal(await p.expectedStart(request), new Date(2026, 11, 2, 16, 41, 0).getTime());
    const command = ch.commands.find((c) => c.includes('--test-only'))!;
    assert.match(command, /^SLURM_TIME_FORMAT=standard sbatch --test-only '?\/tmp\/fake-scripts\/funcx-block-probe\.[a-z0-9]+\.sh'?$/);
    assert.equal(ch.commands.filter((c) => /^sbatch /.test(c)).length, 0, 'nothing submitted');
    ch.on(/sbatch --test-only/, { code: 1, stderr: 'sbatch: error: Batch job submission failed: Requested node configuration is not available\n' });
    assert.equal(await p.expectedStart(request), undefined);
    ch.on(/sbatch --test-only/, { stderr: 'sbatch: Job 3984 to start at Tue 16:41 using 2 processors\n' });
    assert.equal(await p.expectedStart(request), undefined, 'a time it cannot read is not a guess');
  });
});

describe('lsf: the true end of a job bjobs has forgotten, from bhist -l', () => {
  // bhist -l as the LSF manual prints it: wrapped at 80 columns mid-word, the rest indented by 21 spaces.
  const bhist = readFileSync(fileURLToPath(new URL('../../../test/fixtures/lsf/outputs/bhist-l.txt', import.meta.url)), 'utf8');

  test('done, exit code, run limit, admin kill, memory limit, zombie, killed by its owner while pending', () => {
    const got = parseBhist(bhist);
    const row = (id: string) => [got.get(id)?.state, got.get(id)?.exitCode];
    assert.deepEqual(row('5101'), ['completed', 0]);
    assert.deepEqual(row('5102'), ['failed', 3]);
    assert.deepEqual(row('5103'), ['timeout', 140]);
    assert.deepEqual(row('5104'), ['cancelled', 130]);
    assert.deepEqual(row('5105'), ['out_of_memory', 137]);
    assert.deepEqual(row('5106'), ['node_fail', -1]);
    assert.deepEqual(row('5107'), ['cancelled', 130]);
    assert.equal(got.get('5103')?.detail, 'bhist: TERM_RUNLIMIT, exit code 140');
    assert.equal(got.size, 7);
    // A job still running (no end in the log) says nothing.
    assert.equal(parseBhist('Job <9>, User <u>, Project <default>, Command <x>\nMon Jun  4 04:36:14: Starting (Pid 1);\n').size, 0);
  });

  test('a job bjobs calls not found is looked up in bhist; one bhist does not know either stays unknown, then ended', async () => {
    const ch = new Fake()
      .on(/^bjobs/, { code: 255, stdout: '5000|RUN|-|-\n', stderr: 'Job <5102> is not found\nJob <5103> is not found\nJob <5999> is not found\n' })
      .on(/^bhist -l 5102 5103 5999$/, { code: 255, stdout: bhist, stderr: 'bhist: No matching job found\n' });
    const p = new LSFProvider({ channel: ch, launcher, logger: quiet, max_status_rate: Infinity });
    const got = await p.status(['5000', '5102', '5103', '5999']);
    assert.equal(got.get('5000')?.state, 'running');
    assert.deepEqual([got.get('5102')?.state, got.get('5102')?.exitCode], ['failed', 3]);
    assert.equal(got.get('5103')?.state, 'timeout');
    assert.deepEqual([got.get('5999')?.state, got.get('5999')?.detail], ['unknown', 'not yet in the accounting']);
    assert.ok(ch.commands.includes('bhist -l 5102 5103 5999'), ch.commands.join('; '));
  });
});

describe('cobalt: its own columns whatever QSTAT_HEADER the user set', () => {
  test('every hold is held; dep_fail is stuck; an unexpected layout is a failed poll', async () => {
    const ch = new Fake().on(/qstat/, { stdout: 'JobId   State\n====================\n1  user_hold\n2  admin_hold\n3  dep_hold\n4  maxrun_hold\n5  dep_fail\n6  starting\n' });
    const p = new CobaltProvider({ channel: ch, launcher, logger: quiet, max_status_rate: Infinity });
    const got = await p.status(['1', '2', '3', '4', '5', '6']);
    assert.equal(ch.commands[0], 'QSTAT_HEADER=JobId:State qstat --header=JobId:State 1 2 3 4 5 6');
    assert.deepEqual([...got.values()].map((s) => s.state), ['held', 'held', 'held', 'held', 'held', 'running']);
    assert.equal(got.get('1')?.reason, 'user_hold');
    assert.equal(got.get('5')?.stuck, true);
    ch.on(/qstat/, { stdout: 'JobID User WallTime Nodes State Location\n=====\n1 alice 00:30:00 1 queued None\n' });
    assert.equal((await p.status(['1'])).get('1')?.state, 'unknown');
  });
});

describe('grid engine: qstat -xml, Eqw deleted, qacct', () => {
  test('an Eqw job is failed with its error reason, and deleted at once', async () => {
    const ch = new Fake()
      .on(/^qstat -xml/, { stdout: sgeXml([['4', 'Eqw'], ['3', 'hqw']]) })
      // Recorded from gridengine 8.1.9: a job whose output folder does not exist.
      .on(/^qstat -j 4$/, { stdout: 'job_number:                 4\nerror reason          1:      12/02/2026 13:27:59 [0:32089]: error: can\'t open output file "/nonexistent/dir/x": No such file or directory\nscheduling info:            Job is in error state\n' })
      .on(/^qdel 4$/, { stdout: 'root has deleted job 4\n' });
    const p = new GridEngineProvider({ channel: ch, launcher, logger: quiet, max_status_rate: Infinity });
    const got = await p.status(['3', '4']);
    assert.equal(got.get('3')?.state, 'held');
    assert.equal(got.get('4')?.state, 'failed');
    assert.match(got.get('4')!.detail!, /can't open output file/);
    assert.ok(ch.commands.includes('qdel 4'), ch.commands.join('\n'));
  });

  test('a text that is not the qstat -xml document is a failed poll', async () => {
    const ch = new Fake().on(/^qstat -xml/, { stdout: 'job-ID prior name user state\n----\n' });
    const p = new GridEngineProvider({ channel: ch, launcher, logger: quiet, max_status_rate: Infinity });
    assert.equal((await p.status(['3'])).get('3')?.state, 'unknown');
  });

  test('qacct tells how a job that left the queue ended', () => {
    const text = [
      '==============================================================',
      'qname        all.q', 'jobnumber    11', 'failed       0', 'exit_status  3',
      '==============================================================',
      'qname        all.q', 'jobnumber    12', 'failed       0', 'exit_status  0',
      '==============================================================',
      'qname        all.q', 'jobnumber    13', 'failed       37  : qmaster enforced h_rt, h_cpu, or h_vmem limit', 'exit_status  137                  (Killed)',
    ].join('\n');
    const got = parseQacct(text);
    assert.deepEqual([got.get('11')?.state, got.get('12')?.state, got.get('13')?.state], ['failed', 'completed', 'timeout']);
    assert.equal(got.get('11')?.exitCode, 3);
  });
});

describe('polite polling', () => {
  /** A stand-in scheduler that counts its status commands; `hold` keeps an answer back until released. */
  const counting = () => {
    const ch = new Fake();
    let inFlight = 0;
    const state = { peak: 0, squeues: 0, release: null as null | (() => void) };
    const run = ch.run.bind(ch);
    ch.run = async (command: string, options?: RunOptions) => {
      if (/^squeue/.test(command)) state.squeues++;
      inFlight++;
      state.peak = Math.max(state.peak, inFlight);
      if (/^squeue/.test(command)) await new Promise<void>((r) => { state.release = r; });
      try { return await run(command, options); } finally { inFlight--; }
    };
    ch.on(/^squeue/, { stdout: '1|R|None\n' });
    return { ch, state };
  };

  test('one status command in flight: callers meanwhile share it; one right after gets the last answer', async () => {
    const { ch, state } = counting();
    const p = new SlurmProvider({ channel: ch, launcher, logger: quiet });
    const asks = Array.from({ length: 5 }, () => p.status(['1']));
    await until('the squeue is running', () => state.release !== null);
    state.release!();
    const all = await Promise.all(asks);
    assert.ok(all.every((m) => m.get('1')?.state === 'running'), 'every caller has the answer');
    assert.equal(state.peak, 1, 'never two status commands at once');
    assert.equal(state.squeues, 1, 'five callers, one squeue');
    // Right after: too soon for another command (12 a minute by default), the last answer comes back.
    const again = await p.status(['1', '2']);
    assert.equal(again.get('1')?.state, 'running');
    assert.equal(again.has('2'), false, 'an id the last answer did not name is left out (the caller keeps what it knew)');
    assert.equal(state.squeues, 1);
    assert.equal(p.schedulerCalls, 1, 'scheduler_calls counts the commands run');
    assert.equal(p.pacer.spared, 5);
  });

  test('max_status_rate is a bad value: a ConfigError naming the field', () => {
    assert.throws(() => new SlurmProvider({ channel: new Fake(), launcher, logger: quiet, max_status_rate: 0 }), /provider\.max_status_rate: 0 must be a number greater than 0/);
  });
});
