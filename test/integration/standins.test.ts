/**
 * The stand-in scheduler commands (test/fixtures/<scheduler>/bin) print what the real ones print, really run
 * the job script with the scheduler's environment and launcher, report states, and cancel.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fixtureBin, type StandInScheduler } from './cluster-setup.js';
import { untilValue } from '../helpers/wait.js';

const work = mkdtempSync(join(tmpdir(), 'funcx-standins-'));
after(() => rmSync(work, { recursive: true, force: true }));
const USER = process.env.USER ?? 'root';

interface Out { code: number; stdout: string; stderr: string }

/** Run a stand-in command with its folder first on PATH and its own state folder. */
function cmd(s: StandInScheduler, line: string[], stdin?: string): Promise<Out> {
  return new Promise((resolve) => {
    const child = execFile(line[0], line.slice(1), {
      cwd: work,
      env: { ...process.env, PATH: `${fixtureBin(s)}:${process.env.PATH}`, FUNCX_FAKE_SCHED_DIR: join(work, `state-${s}`), FUNCX_FAKE_SCHED_DELAY: '0.3' },
    }, (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
    child.stdin?.end(stdin ?? '');
  });
}

/**
 * Shell lines that keep a job running until the test creates `work/name` (so the test sees it queued and
 * running however slow the machine is), bounded at 60 s.
 */
function holdUntilFile(name: string): string {
  return `for i in $(seq 1200); do [ -e ${join(work, name)} ] && break; sleep 0.05; done\n`;
}

function script(name: string, text: string): string {
  const path = join(work, name);
  writeFileSync(path, text, { mode: 0o755 });
  return path;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

describe('PBS Pro stand-in', () => {
  const pbsState = async (id: string): Promise<{ state?: string; exit?: number }> => {
    const r = await cmd('pbspro', ['qstat', '-x', '-f', '-F', 'json', id]);
    const job = JSON.parse(r.stdout).Jobs?.[id];
    return { state: job?.job_state, exit: job?.Exit_status };
  };

  test('qsub prints the id; the job runs on 2 nodes through mpiexec; qstat -x -f -F json reports Q/R then F with Exit_status', async () => {
    const s = script('pbs.sh', `#!/bin/bash\n#PBS -N funcx-block-7\n#PBS -l select=2:ncpus=1\n#PBS -l walltime=00:05:00\n#PBS -o ${work}/pbs.out\n#PBS -j oe\necho "id=$PBS_JOBID"\nmpiexec -n 2 -ppn 1 bash -c 'echo "rank $PMI_RANK on $FUNCX_FAKE_NODE"'\n${holdUntilFile('pbs-go')}exit 3\n`);
    const sub = await cmd('pbspro', ['qsub', s]);
    assert.equal(sub.code, 0, sub.stderr);
    assert.match(sub.stdout, /^\d+\.pbs01\n$/);
    const id = sub.stdout.trim();
    const raw = JSON.parse((await cmd('pbspro', ['qstat', '-x', '-f', '-F', 'json', id])).stdout);
    assert.deepEqual(Object.keys(raw), ['timestamp', 'pbs_version', 'pbs_server', 'Jobs']);
    assert.equal(raw.Jobs[id].Job_Name, 'funcx-block-7');
    assert.match(raw.Jobs[id].job_state, /^[QR]$/);
    await untilValue('running', () => pbsState(id), { ok: (v) => v.state === 'R' });
    writeFileSync(join(work, 'pbs-go'), '');
    const done = await untilValue('finished', () => pbsState(id), { ok: (v) => v.state === 'F' });
    assert.equal(done.exit, 3);
    const out = readFileSync(join(work, 'pbs.out'), 'utf8');
    assert.match(out, new RegExp(`id=${id.replace('.', '\\.')}`));
    assert.match(out, /rank 0 on n1/);
    assert.match(out, /rank 1 on n2/);
    const plain = await cmd('pbspro', ['qstat', id]);
    assert.equal(plain.code, 35);
    assert.match(plain.stderr, /Job has finished, use -x/);
  });

  test('qdel kills a running job (its whole process group); unknown ids are refused like PBS', async () => {
    const s = script('pbs-long.sh', `#!/bin/bash\n#PBS -o ${work}/pbs-long.out\nsleep 60 & echo $! > ${work}/pbs-long.pid\nwait\n`);
    const id = (await cmd('pbspro', ['qsub', s])).stdout.trim();
    await untilValue('pid written', async () => existsSync(join(work, 'pbs-long.pid')), { ok: (v) => v });
    const pid = Number(readFileSync(join(work, 'pbs-long.pid'), 'utf8'));
    assert.ok(alive(pid));
    const del = await cmd('pbspro', ['qdel', id]);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(del.stdout, '');
    const st = await untilValue('cancelled', () => pbsState(id), { ok: (v) => v.state === 'F' });
    assert.equal(st.exit, 271);
    await untilValue('process killed', async () => alive(pid), { ok: (v) => !v, timeoutMs: 5000 });
    const unknown = await cmd('pbspro', ['qstat', '-x', '-f', '-F', 'json', '99999.pbs01']);
    assert.equal(unknown.code, 153);
    assert.match(unknown.stderr, /Unknown Job Id 99999\.pbs01/);
  });

  test('walltime is enforced and a held job waits for qrls', async () => {
    const s = script('pbs-wall.sh', '#!/bin/bash\n#PBS -l walltime=00:00:01\nsleep 30\n');
    const id = (await cmd('pbspro', ['qsub', '-o', '/dev/null', '-e', '/dev/null', s])).stdout.trim();
    const st = await untilValue('walltime kill', () => pbsState(id), { ok: (v) => v.state === 'F', timeoutMs: 8000 });
    assert.equal(st.exit, 271);
    const held = (await cmd('pbspro', ['qsub', '-h', '-o', '/dev/null', '-e', '/dev/null', script('pbs-held.sh', '#!/bin/sh\ntrue\n')])).stdout.trim();
    // A job submitted after the held one runs to its end: the held one's queue delay has passed too, and it
    // must still be held.
    const later = (await cmd('pbspro', ['qsub', '-o', '/dev/null', '-e', '/dev/null', script('pbs-later.sh', '#!/bin/sh\ntrue\n')])).stdout.trim();
    await untilValue('the later job done', () => pbsState(later), { ok: (v) => v.state === 'F' && v.exit === 0 });
    assert.equal((await pbsState(held)).state, 'H');
    assert.equal((await cmd('pbspro', ['qrls', held])).code, 0);
    await untilValue('released job done', () => pbsState(held), { ok: (v) => v.state === 'F' && v.exit === 0 });
  });

  test('unknown options are refused as qsub refuses them', async () => {
    const r = await cmd('pbspro', ['qsub', '-Z', 'x']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /invalid option/);
  });
});

describe('Torque stand-in', () => {
  test('qstat table: header, dashes, state in column 5; R then C; nodes=N:ppn=C in PBS_NODEFILE', async () => {
    const s = script('torque.sh', `#!/bin/bash\n#PBS -l nodes=2:ppn=2\n#PBS -N torquejob\n#PBS -o ${work}/torque.out\n#PBS -j oe\nsort $PBS_NODEFILE | uniq -c | tr -s ' '\nmpiexec -ppn 1 bash -c 'echo "copy $PMI_RANK $FUNCX_FAKE_NODE"'\n${holdUntilFile('torque-go')}`);
    const id = (await cmd('torque', ['qsub', s])).stdout.trim();
    assert.match(id, /^\d+\.torque01$/);
    const row = async (): Promise<string[]> => {
      const lines = (await cmd('torque', ['qstat', id])).stdout.trimEnd().split('\n');
      assert.match(lines[0], /^Job ID\s+Name\s+User\s+Time Use S Queue$/);
      assert.match(lines[1], /^-+ -+ -+ -+ - -+$/);
      return lines[2].split(/\s+/);
    };
    const r = await untilValue('running', row, { ok: (cols) => cols[4] === 'R' });
    assert.deepEqual([r[0], r[1], r[2], r[5]], [id, 'torquejob', USER, 'batch']);
    writeFileSync(join(work, 'torque-go'), '');
    await untilValue('completed', row, { ok: (cols) => cols[4] === 'C' });
    const out = readFileSync(join(work, 'torque.out'), 'utf8');
    assert.match(out, / 2 n1\n 2 n2\n/);
    assert.match(out, /copy 0 n1/);
    assert.match(out, /copy 1 n2/);
  });

  test('qdel cancels; an unknown id gives Torque\'s error', async () => {
    const id = (await cmd('torque', ['qsub', '-o', '/dev/null', '-e', '/dev/null', script('t-long.sh', '#!/bin/sh\nsleep 60\n')])).stdout.trim();
    assert.equal((await cmd('torque', ['qdel', id])).code, 0);
    const st = await untilValue('cancelled', async () => (await cmd('torque', ['qstat', id])).stdout, { ok: (o) => /\sC\s+batch/.test(o) });
    assert.match(st, new RegExp(`^${id.replace('.', '\\.')}`, 'm'));
    const unknown = await cmd('torque', ['qstat', '424242.torque01']);
    assert.equal(unknown.code, 153);
    assert.match(unknown.stderr, /Unknown Job Id Error 424242\.torque01/);
  });

  test("node-exclusive -n is Torque's own: accepted here, refused by the PBS Pro stand-in", async () => {
    const s = script('t-excl.sh', '#!/bin/sh\n#PBS -n\n#PBS -l nodes=1:ppn=1\ntrue\n');
    const torque = await cmd('torque', ['qsub', '-o', '/dev/null', '-e', '/dev/null', s]);
    assert.equal(torque.code, 0, torque.stderr);
    assert.match(torque.stdout.trim(), /^\d+\.torque01$/);
    const pbs = await cmd('pbspro', ['qsub', s]);
    assert.equal(pbs.code, 2);
    assert.match(pbs.stderr, /invalid option -- 'n'/);
  });
});

describe('Cobalt stand-in', () => {
  const row = async (id: string): Promise<string[] | undefined> => {
    const out = (await cmd('cobalt', ['qstat', '-u', USER])).stdout;
    if (out === '') return undefined;
    const lines = out.trimEnd().split('\n');
    assert.deepEqual(lines[0].split(/\s+/), ['JobID', 'User', 'WallTime', 'Nodes', 'State', 'Location']);
    assert.match(lines[1], /^=+$/);
    return lines.slice(2).map((l) => l.split(/\s+/)).find((c) => c[0] === id);
  };

  test('qsub prints the bare id; qstat -u shows queued/running; aprun starts one copy per node; done jobs vanish', async () => {
    const s = script('cobalt.sh', `#!/bin/bash\n#COBALT -A myproject\necho "job $COBALT_JOBID on $COBALT_PARTNAME"\naprun -n 2 -N 1 bash -c 'echo "pe $ALPS_APP_PE on $FUNCX_FAKE_NODE"'\n${holdUntilFile('cobalt-go')}`);
    const sub = await cmd('cobalt', ['qsub', '-n', '2', '-t', '10', '-q', 'debug-flat-quad', '--mode', 'script', s]);
    assert.match(sub.stdout, /^\d+\n$/);
    const id = sub.stdout.trim();
    const first = await row(id);
    assert.ok(first && ['queued', 'running'].includes(first[4]), JSON.stringify(first));
    assert.deepEqual(first?.slice(1, 4), [USER, '00:10:00', '2']);
    await untilValue('running', () => row(id), { ok: (c) => c?.[4] === 'running' });
    writeFileSync(join(work, 'cobalt-go'), '');
    await untilValue('gone', () => row(id), { ok: (c) => c === undefined });
    const out = readFileSync(join(work, `${id}.output`), 'utf8');
    assert.match(out, new RegExp(`job ${id} on n1,n2`));
    assert.match(out, /pe 0 on n1/);
    assert.match(out, /pe 1 on n2/);
    assert.ok(existsSync(join(work, `${id}.error`)));
  });

  test('qdel removes a running job and kills it', async () => {
    const s = script('cobalt-long.sh', `#!/bin/bash\nsleep 60 & echo $! > ${work}/cobalt.pid\nwait\n`);
    const id = (await cmd('cobalt', ['qsub', '-n', '1', '-t', '00:10:00', s])).stdout.trim();
    await untilValue('pid', async () => existsSync(join(work, 'cobalt.pid')), { ok: (v) => v });
    const pid = Number(readFileSync(join(work, 'cobalt.pid'), 'utf8'));
    const del = await cmd('cobalt', ['qdel', id]);
    assert.match(del.stdout, new RegExp(`Deleted Jobs[\\s\\S]*${id}\\s+${USER}`));
    assert.equal(await row(id), undefined);
    await untilValue('killed', async () => alive(pid), { ok: (v) => !v, timeoutMs: 5000 });
  });
});

describe('LSF stand-in', () => {
  const stat = async (id: string): Promise<Out> => cmd('lsf', ['bjobs', '-noheader', '-o', 'jobid stat', id]);

  test('bsub < script: the LSF message, PEND/RUN then DONE, jsrun over -nnodes, %J in -o', async () => {
    const text = `#!/bin/bash\n#BSUB -J funcx-lsf\n#BSUB -nnodes 2\n#BSUB -W 10\n#BSUB -o ${work}/lsf.%J.out\necho "hosts $LSB_HOSTS"\njsrun -n 2 -r 1 -a 1 bash -c 'echo "rank $JSM_NAMESPACE_RANK on $FUNCX_FAKE_NODE"'\n${holdUntilFile('lsf-go')}`;
    const sub = await cmd('lsf', ['bsub'], text);
    const m = /^Job <(\d+)> is submitted to default queue <normal>\.\n$/.exec(sub.stdout);
    assert.ok(m, sub.stdout + sub.stderr);
    const id = m[1];
    assert.match((await stat(id)).stdout, new RegExp(`^${id} (PEND|RUN)\n$`));
    await untilValue('RUN', async () => (await stat(id)).stdout, { ok: (o) => o === `${id} RUN\n` });
    writeFileSync(join(work, 'lsf-go'), '');
    await untilValue('DONE', async () => (await stat(id)).stdout, { ok: (o) => o === `${id} DONE\n` });
    const out = readFileSync(join(work, `lsf.${id}.out`), 'utf8');
    assert.match(out, /hosts n1 n2/);
    assert.match(out, /rank 0 on n1/);
    assert.match(out, /rank 1 on n2/);
  });

  test('a failing job is EXIT; bkill terminates; unknown ids are not found', async () => {
    const bad = (await cmd('lsf', ['bsub', '-q', 'short', '-o', '/dev/null', 'exit 5'])).stdout;
    assert.match(bad, /^Job <\d+> is submitted to queue <short>\.$/m);
    const badId = /<(\d+)>/.exec(bad)![1];
    await untilValue('EXIT', async () => (await cmd('lsf', ['bjobs', '-noheader', '-o', 'jobid stat exit_code', badId])).stdout, { ok: (o) => o === `${badId} EXIT 5\n` });
    const long = /<(\d+)>/.exec((await cmd('lsf', ['bsub', '-o', '/dev/null'], '#!/bin/sh\nsleep 60\n')).stdout)![1];
    const kill = await cmd('lsf', ['bkill', long]);
    assert.equal(kill.stdout, `Job <${long}> is being terminated\n`);
    await untilValue('killed', async () => (await stat(long)).stdout, { ok: (o) => o === `${long} EXIT\n` });
    const unknown = await cmd('lsf', ['bjobs', '-noheader', '-o', 'jobid stat', long, '77777']);
    assert.equal(unknown.code, 255);
    assert.equal(unknown.stdout, `${long} EXIT\n`);
    assert.equal(unknown.stderr, 'Job <77777> is not found\n');
  });
});
