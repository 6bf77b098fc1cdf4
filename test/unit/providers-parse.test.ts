/**
 * Conformance suite: every batch provider, driven through a fake Channel that records commands and answers
 * with the real schedulers' output (recorded in ../shared/REFERENCE.md): submit, status, cancel.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Channel, CommandResult, RunOptions } from '../../providers/channels/channel.js';
import type { Launcher, LaunchContext } from '../../launchers/launcher.js';
import type { BlockState } from '../../providers/provider.js';
import type { ClusterProvider } from '../../providers/cluster.js';
import { SubmitError } from '../../src/errors.js';
import { SlurmProvider } from '../../providers/slurm.js';
import { PBSProProvider } from '../../providers/pbspro.js';
import { TorqueProvider } from '../../providers/torque.js';
import { CobaltProvider } from '../../providers/cobalt.js';
import { LSFProvider } from '../../providers/lsf.js';
import { GridEngineProvider } from '../../providers/gridengine.js';
import { requestFor } from '../helpers/block-request.js';
import { sgeXml } from '../helpers/sge-xml.js';

type Reply = Partial<CommandResult>;

/** Records every command; answers the first rule whose pattern matches (mkdir succeeds by default). */
class FakeChannel implements Channel {
  readonly kind = 'fake';
  readonly isRemote = false;
  readonly commands: Array<{ command: string; options: RunOptions | undefined }> = [];
  readonly files = new Map<string, { content: string; mode: number | undefined }>();
  rules: Array<[RegExp, Reply]> = [];
  constructor(readonly scriptDir = '/home/alice/.funcx/ep/submit_scripts') {}
  on(pattern: RegExp, reply: Reply): this {
    this.rules.unshift([pattern, reply]);
    return this;
  }
  async run(command: string, options?: RunOptions): Promise<CommandResult> {
    this.commands.push({ command, options });
    const reply = this.rules.find(([re]) => re.test(command))?.[1] ?? (/^mkdir /.test(command) ? {} : { code: 127, stderr: `sh: ${command.split(' ')[0]}: not found` });
    return { code: 0, stdout: '', stderr: '', timedOut: false, ...reply };
  }
  async writeFile(path: string, content: string | Buffer, mode?: number): Promise<string> {
    this.files.set(path, { content: String(content), mode });
    return path;
  }
  async readFile(): Promise<Buffer> {
    return Buffer.from('');
  }
  async exposePort(host: string, port: number) {
    return { host, port };
  }
  async close(): Promise<void> {}
  last(): string {
    return this.commands.at(-1)!.command;
  }
}

const launcher: Launcher = { name: 'fake', wrap: (cmd: string, ctx: LaunchContext) => `fake-launch -N ${ctx.nodesPerBlock} ${cmd}` };

interface Case {
  name: string;
  make: (channel: FakeChannel, logs: string[]) => ClusterProvider;
  submit: { pattern: RegExp; stdout: string; jobId: string };
  status: { pattern: RegExp; ids: string[]; reply: Reply; expect: Record<string, BlockState> };
  /** The status of ids the scheduler no longer knows. */
  gone: { reply: Reply; id: string };
  /** Every state code of the scheduler with the state it must become (written from REFERENCE.md). */
  codes: Record<string, BlockState>;
  codeReply: (rows: Array<[string, string]>) => Reply;
  cancel: { pattern: RegExp; goneStderr: string };
}

const logger = (logs: string[]) => (level: string, msg: string) => logs.push(`${level} ${msg}`);
const common = (c: FakeChannel, logs: string[]) => ({ channel: c, launcher, logger: logger(logs), max_status_rate: Infinity });

const cases: Case[] = [
  {
    name: 'slurm',
    make: (c, l) => new SlurmProvider({ ...common(c, l), partition: 'debug' }),
    submit: { pattern: /^sbatch /, stdout: 'Submitted batch job 42\n', jobId: '42' },
    status: {
      pattern: /^squeue --noheader --format='%i\|%t\|%r' --states=all --job=42,43,44$/,
      ids: ['42', '43', '44'],
      reply: { stdout: '42|PD|Priority\n43|R|None\n' },
      expect: { '42': 'pending', '43': 'running', '44': 'ended' },
    },
    gone: { id: '99', reply: { code: 1, stderr: 'slurm_load_jobs error: Invalid job id specified\n' } },
    codes: {
      PD: 'pending', CF: 'pending', RQ: 'pending', RF: 'pending', R: 'running', CG: 'running', SI: 'running',
      SO: 'running', RS: 'running', CD: 'completed', CA: 'cancelled', F: 'failed', BF: 'failed', PR: 'failed',
      NF: 'node_fail', OOM: 'out_of_memory', TO: 'timeout', DL: 'timeout', S: 'held', ST: 'held', RH: 'held',
      RD: 'held', SE: 'held', RV: 'unknown',
    },
    codeReply: (rows) => ({ stdout: rows.map(([id, code]) => `${id}|${code}|None`).join('\n') + '\n' }),
    cancel: { pattern: /^scancel 42 43$/, goneStderr: '' },
  },
  {
    name: 'pbspro',
    make: (c, l) => new PBSProProvider({ ...common(c, l), queue: 'workq', account: 'ABC123' }),
    submit: { pattern: /^qsub /, stdout: '1234.pbs01\n', jobId: '1234.pbs01' },
    status: {
      pattern: /^qstat -x -f -F json 1234\.pbs01 1235\.pbs01 1236\.pbs01$/,
      ids: ['1234.pbs01', '1235.pbs01', '1236.pbs01'],
      // The key may be the short id.
      reply: {
        code: 153,
        stderr: 'qstat: Unknown Job Id 1236.pbs01\n',
        stdout: JSON.stringify({ timestamp: 1764000000, pbs_version: '2022.1.1', pbs_server: 'pbs01', Jobs: { '1234.pbs01': { Job_Name: 'funcx-block-3', job_state: 'Q' }, '1235': { Job_Name: 'funcx-block-4', job_state: 'R' } } }),
      },
      expect: { '1234.pbs01': 'pending', '1235.pbs01': 'running', '1236.pbs01': 'ended' },
    },
    gone: { id: '99.pbs01', reply: { code: 153, stderr: 'qstat: Unknown Job Id 99.pbs01\n' } },
    codes: { Q: 'pending', W: 'pending', T: 'pending', R: 'running', E: 'running', B: 'running', F: 'completed', X: 'completed', H: 'held', S: 'held', U: 'held', M: 'unknown' },
    codeReply: (rows) => ({
      stdout: JSON.stringify({ timestamp: 1, pbs_version: '2022.1.1', pbs_server: 'pbs01', Jobs: Object.fromEntries(rows.map(([id, code]) => [`${id}.pbs01`, { job_state: code }])) }),
    }),
    cancel: { pattern: /^qdel 42 43$/, goneStderr: 'qdel: Unknown Job Id 43.pbs01\n' },
  },
  {
    name: 'torque',
    make: (c, l) => new TorqueProvider({ ...common(c, l), queue: 'batch' }),
    submit: { pattern: /^qsub /, stdout: '1234.server\n', jobId: '1234.server' },
    status: {
      pattern: /^qstat -f 1234\.server 1235\.server 1236\.server$/,
      ids: ['1234.server', '1235.server', '1236.server'],
      reply: {
        code: 153,
        stderr: 'qstat: Unknown Job Id Error 1236.server\n',
        stdout: [
          'Job Id: 1234.server',
          '    Job_Name = funcx-block-3',
          '    job_state = Q',
          '    comment = Not Running: Not enough of the right type of nodes are available',
          '',
          'Job Id: 1235.server',
          '    Job_Name = funcx-block-4',
          '    job_state = R',
        ].join('\n'),
      },
      expect: { '1234.server': 'pending', '1235.server': 'running', '1236.server': 'ended' },
    },
    gone: { id: '99.server', reply: { code: 153, stderr: 'qstat: Unknown Job Id Error 99.server\n' } },
    codes: { Q: 'pending', W: 'pending', T: 'pending', R: 'running', E: 'running', C: 'completed', H: 'held', S: 'held' },
    codeReply: (rows) => ({
      stdout: rows.map(([id, code]) => `Job Id: ${id}.server\n    Job_Name = funcx-block-1\n    job_state = ${code}\n`).join('\n'),
    }),
    cancel: { pattern: /^qdel 42 43$/, goneStderr: 'qdel: Unknown Job Id 43.server\n' },
  },
  {
    name: 'cobalt',
    make: (c, l) => new CobaltProvider({ ...common(c, l), queue: 'debug-cache-quad', account: 'MyProject' }),
    submit: { pattern: /^qsub -n 1 -t 30 /, stdout: '348213\n', jobId: '348213' },
    status: {
      pattern: /^QSTAT_HEADER=JobId:State qstat --header=JobId:State 348213 348214 348215$/,
      ids: ['348213', '348214', '348215'],
      reply: {
        stdout: [
          'JobId   State',
          '===============',
          '348213  queued',
          '348214  running',
        ].join('\n'),
      },
      expect: { '348213': 'pending', '348214': 'running', '348215': 'ended' },
    },
    gone: { id: '99', reply: { stdout: '' } },
    codes: {
      queued: 'pending', starting: 'running', running: 'running', exiting: 'running', killing: 'running',
      user_hold: 'held', admin_hold: 'held', dep_hold: 'held', maxrun_hold: 'held', hold: 'held', dep_fail: 'held',
      done: 'completed',
    },
    codeReply: (rows) => ({ stdout: 'JobId State\n=====\n' + rows.map(([id, code]) => `${id} ${code}`).join('\n') }),
    cancel: { pattern: /^qdel 42 43$/, goneStderr: 'Job 43 not found\n' },
  },
  {
    name: 'lsf',
    make: (c, l) => new LSFProvider({ ...common(c, l), queue: 'batch', project: 'CSC123' }),
    submit: { pattern: /^bsub < /, stdout: 'Job <1234> is submitted to queue <normal>.\n', jobId: '1234' },
    status: {
      pattern: /^bjobs -noheader -o "jobid stat exit_code pend_reason delimiter='\|'" 1234 1235 1236$/,
      ids: ['1234', '1235', '1236'],
      reply: { code: 255, stdout: '1234|RUN|-|-\n1235|PEND|-|New job is waiting for scheduling;\n', stderr: 'Job <1236> is not found\n' },
      expect: { '1234': 'running', '1235': 'pending', '1236': 'ended' },
    },
    gone: { id: '99', reply: { code: 255, stderr: 'Job <99> is not found\n' } },
    codes: { PEND: 'pending', WAIT: 'pending', PROV: 'pending', RUN: 'running', DONE: 'completed', EXIT: 'failed', PSUSP: 'held', USUSP: 'held', SSUSP: 'held', ZOMBI: 'failed', UNKWN: 'unknown' },
    codeReply: (rows) => ({ stdout: rows.map(([id, code]) => `${id}|${code}|-|-`).join('\n') }),
    cancel: { pattern: /^bkill 42 43$/, goneStderr: 'Job <43>: Job has already finished\n' },
  },
  {
    name: 'gridengine',
    make: (c, l) => new GridEngineProvider({ ...common(c, l), queue: 'all.q' }),
    submit: { pattern: /^qsub -terse /, stdout: '1234\n', jobId: '1234' },
    status: {
      pattern: /^qstat -xml -u "\$\(id -un\)"$/,
      ids: ['5', '3', '7'],
      // Recorded from Debian's gridengine 8.1.9 (a running job and a held one).
      reply: { stdout: sgeXml([['5', 'r'], ['3', 'hqw']]) },
      expect: { '5': 'running', '3': 'held', '7': 'ended' },
    },
    gone: { id: '99', reply: { stdout: sgeXml([]) } },
    codes: {
      qw: 'pending', hqw: 'held', hRwq: 'held', Rq: 'pending', r: 'running', t: 'running', Rr: 'running', Rt: 'running',
      hr: 'running', s: 'held', ts: 'held', S: 'held', tS: 'held', T: 'held', tT: 'held', Rs: 'held', Rts: 'held',
      RS: 'held', RtS: 'held', RT: 'held', RtT: 'held', Eqw: 'failed', Ehqw: 'failed', EhRqw: 'failed',
      dr: 'cancelled', dt: 'cancelled', dRr: 'cancelled', dRt: 'cancelled', ds: 'cancelled', dS: 'cancelled',
      dT: 'cancelled', dRs: 'cancelled', dRS: 'cancelled', dRT: 'cancelled', dqw: 'cancelled', dhqw: 'cancelled',
    },
    codeReply: (rows) => ({ stdout: sgeXml(rows) }),
    cancel: { pattern: /^qdel 42 43$/, goneStderr: 'denied: job "43" does not exist\n' },
  },
];

before(() => {
  // Render from the built-in templates only, whatever this machine's site folder holds.
  process.env.FUNCX_SITE_TEMPLATES = mkdtempSync(join(tmpdir(), 'funcx-site-empty-'));
});

for (const c of cases) {
  describe(`${c.name} provider`, () => {
    const setup = () => {
      const channel = new FakeChannel();
      const logs: string[] = [];
      return { channel, logs, provider: c.make(channel, logs) };
    };

    test('submit writes the script 0700 in script_dir, runs the submit command there and reads the job id', async () => {
      const { channel, provider } = setup();
      channel.on(c.submit.pattern, { stdout: c.submit.stdout });
      const block = await provider.submit(requestFor(provider));
      assert.equal(block.jobId, c.submit.jobId);
      assert.match(block.scriptPath, /^\/home\/alice\/\.funcx\/ep\/submit_scripts\/funcx-block-3\.[a-z0-9]+\.sh$/);
      assert.equal(block.stdoutPath, block.scriptPath.replace(/\.sh$/, '.stdout'));
      const file = channel.files.get(block.scriptPath);
      assert.ok(file, 'script written through the channel');
      assert.equal(file.mode, 0o700);
      assert.match(file.content, /fake-launch -N 1 funcx-manager --block 3/);
      const submit = channel.commands.find((x) => c.submit.pattern.test(x.command))!;
      assert.ok(submit.command.includes(block.scriptPath), submit.command);
      assert.equal(submit.options?.cwd, channel.scriptDir);
      assert.ok(submit.options?.timeoutMs === 30_000, 'cmd_timeout default 30 s');
    });

    test('submit: garbage output, non-zero exit and timeout give SubmitError with command, code and stderr', async () => {
      const { channel, provider } = setup();
      channel.on(c.submit.pattern, { stdout: 'Welcome to the cluster!\n', stderr: 'warning: motd\n' });
      await assert.rejects(provider.submit(requestFor(provider)), (err: unknown) => {
        assert.ok(err instanceof SubmitError);
        assert.match(err.message, /no job id/);
        assert.equal(err.stderr, 'warning: motd\n');
        assert.match(err.command, c.submit.pattern);
        return true;
      });
      channel.on(c.submit.pattern, { code: 1, stderr: 'error: invalid partition/queue specified\n' });
      await assert.rejects(provider.submit(requestFor(provider)), (err: unknown) => {
        assert.ok(err instanceof SubmitError);
        assert.equal(err.exitCode, 1);
        assert.equal(err.stderr, 'error: invalid partition/queue specified\n');
        assert.match(err.message, /invalid partition/);
        return true;
      });
      channel.on(c.submit.pattern, { code: null, timedOut: true });
      await assert.rejects(provider.submit(requestFor(provider)), (err: unknown) => err instanceof SubmitError && /timed out after 30s/.test(err.message));
    });

    test('status asks for all ids in one command and maps the recorded output', async () => {
      const { channel, provider } = setup();
      channel.on(c.status.pattern, c.status.reply);
      const got = await provider.status(c.status.ids);
      // One status command; a job that left the queue may be looked up in accounting after it.
      assert.equal(channel.commands.filter((x) => c.status.pattern.test(x.command)).length, 1, channel.commands.map((x) => x.command).join(' | '));
      assert.match(channel.commands[0]!.command, c.status.pattern);
      assert.deepEqual(Object.fromEntries([...got].map(([id, s]) => [id, s.state])), c.status.expect);
    });

    test('status: every state code maps to our state; an unknown code is unknown and logged once', async () => {
      const { channel, logs, provider } = setup();
      const codes = Object.entries(c.codes);
      const rows = codes.map(([code], i): [string, string] => [String(100 + i), code]);
      rows.push(['999', 'ZZ']);
      channel.on(/./, c.codeReply(rows));
      const got = await provider.status(rows.map(([id]) => id));
      assert.ok(channel.commands.length >= 1);
      codes.forEach(([code, state], i) => {
        assert.equal(got.get(String(100 + i))?.state, state, `code ${code}`);
        assert.equal(got.get(String(100 + i))?.raw, code);
      });
      assert.deepEqual({ state: got.get('999')?.state, raw: got.get('999')?.raw }, { state: 'unknown', raw: 'ZZ' });
      await provider.status(['999']);
      assert.equal(logs.filter((l) => l.startsWith('warn') && l.includes('"ZZ"')).length, 1, logs.join('\n'));
    });

    test('status: a job the scheduler no longer knows has ended (never "completed" on a guess; cancelled when we cancelled it)', async () => {
      const { channel, provider } = setup();
      channel.on(/./, c.gone.reply);
      channel.on(/^(sacct|qacct) /, { code: 1, stderr: 'accounting storage is disabled\n' });
      const gone = (await provider.status([c.gone.id])).get(c.gone.id);
      assert.equal(gone?.state, 'ended');
      assert.equal(gone?.detail, 'unknown: left the queue');
      channel.on(/^(scancel|qdel|bkill) /, {});
      await provider.cancel([c.gone.id]);
      assert.equal((await provider.status([c.gone.id])).get(c.gone.id)?.state, 'cancelled');
    });

    test('status: a failing or hanging command keeps knowledge: every id unknown with the stderr', async () => {
      const { channel, provider } = setup();
      channel.on(/./, { code: 2, stderr: 'cannot connect to server: Connection refused\n' });
      const got = await provider.status(['1', '2']);
      for (const id of ['1', '2']) {
        assert.equal(got.get(id)?.state, 'unknown');
        assert.match(got.get(id)?.detail ?? '', /Connection refused/);
      }
      channel.on(/./, { code: null, timedOut: true });
      const hung = await provider.status(['1']);
      assert.equal(hung.get('1')?.state, 'unknown');
      assert.match(hung.get('1')?.detail ?? '', /timed out/);
      const none = await provider.status([]);
      assert.equal(none.size, 0);
    });

    test('status: an id that is not a job id never reaches the shell', async () => {
      const { channel, provider } = setup();
      const got = await provider.status(['1; rm -rf ~']);
      assert.equal(got.get('1; rm -rf ~')?.state, 'unknown');
      assert.equal(channel.commands.length, 0);
    });

    test('cancel: one command for all ids; "already gone" is success; real failure is SubmitError', async () => {
      const { channel, provider } = setup();
      channel.on(c.cancel.pattern, {});
      await provider.cancel(['42', '43']);
      assert.match(channel.last(), c.cancel.pattern);
      assert.equal(channel.commands.length, 1);
      if (c.cancel.goneStderr) {
        channel.on(c.cancel.pattern, { code: 1, stderr: c.cancel.goneStderr });
        await provider.cancel(['42', '43']);
      }
      channel.on(c.cancel.pattern, { code: 1, stderr: 'permission denied\n' });
      await assert.rejects(provider.cancel(['42', '43']), (err: unknown) => err instanceof SubmitError && err.stderr === 'permission denied\n');
      await assert.rejects(provider.cancel(['42; reboot']), SubmitError);
    });
  });
}

describe('scheduler details', () => {
  test('slurm reads --parsable output too; squeue failure that is not "invalid id" is unknown', async () => {
    const channel = new FakeChannel().on(/^sbatch/, { stdout: '77;cluster1\n' });
    const p = new SlurmProvider({ channel, launcher });
    assert.equal((await p.submit(requestFor(p))).jobId, '77.cluster1');
    channel.on(/^sbatch/, { stdout: '78\n' });
    assert.equal((await p.submit(requestFor(p))).jobId, '78');
    channel.on(/^squeue/, { code: 1, stderr: 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n' });
    const got = (await p.status(['77'])).get('77');
    assert.equal(got?.state, 'unknown');
    assert.equal(got?.detail, 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)');
  });

  test('pbspro: finished jobs are told apart by Exit_status; invalid JSON is still read', async () => {
    const channel = new FakeChannel();
    const p = new PBSProProvider({ channel, launcher, max_status_rate: Infinity });
    const jobs = { '1.s': { job_state: 'F', Exit_status: 0 }, '2.s': { job_state: 'F', Exit_status: 1 }, '3.s': { job_state: 'F', Exit_status: 271 }, '4.s': { job_state: 'F', Exit_status: -29 } };
    channel.on(/^qstat/, { stdout: JSON.stringify({ timestamp: 1, Jobs: jobs }) });
    const got = await p.status(Object.keys(jobs));
    assert.deepEqual([...got.values()].map((s) => s.state), ['completed', 'failed', 'cancelled', 'timeout']);
    // A raw backslash in Variable_List makes the document invalid JSON.
    const broken = '{"Jobs":{"9.s":{"Variable_List":"PATH=C:\\x","Resource_List":{"walltime":"00:30:00"},"job_state":"R"},"10.s":{"job_state":"F","Exit_status":2}}}';
    channel.on(/^qstat/, { stdout: broken });
    const read = await p.status(['9.s', '10.s']);
    assert.equal(read.get('9.s')?.state, 'running');
    assert.equal(read.get('10.s')?.state, 'failed');
  });

  test('lsf: a cancelled job that ends with EXIT is reported cancelled', async () => {
    const channel = new FakeChannel().on(/^bkill/, { stdout: 'Job <5> is being terminated\n' });
    const p = new LSFProvider({ channel, launcher });
    await p.cancel(['5']);
    channel.on(/^bjobs/, { stdout: '5|EXIT|130|-\n' });
    assert.equal((await p.status(['5'])).get('5')?.state, 'cancelled');
  });

  test('gridengine reads qsub output without -terse too', async () => {
    const channel = new FakeChannel().on(/^qsub/, { stdout: 'Your job 1234 ("funcx-block-3") has been submitted\n' });
    const p = new GridEngineProvider({ channel, launcher });
    assert.equal((await p.submit(requestFor(p))).jobId, '1234');
  });

  test('cmd_timeout reaches every command', async () => {
    const channel = new FakeChannel().on(/^squeue/, { stdout: '' });
    const p = new SlurmProvider({ channel, launcher, cmd_timeout: 5 });
    await p.status(['1']);
    assert.equal(channel.commands[0]?.options?.timeoutMs, 5000);
  });
});
