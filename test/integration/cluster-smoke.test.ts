/**
 * The real test clusters work: a 2-node Slurm job runs one task on n1 and one on n2 through srun, and a
 * Grid Engine job runs (with the smp parallel environment). Fails, naming what is missing, when the
 * clusters cannot be started.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ensureGridEngine, ensureSlurm } from './cluster-setup.js';
import { untilValue } from '../helpers/wait.js';

const work = mkdtempSync(join(tmpdir(), 'funcx-smoke-'));
chmodSync(work, 0o755);
after(() => rmSync(work, { recursive: true, force: true }));

function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: work }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

describe('Slurm test cluster', () => {
  test('a 2-node job runs srun --ntasks-per-node=1 once on each of two different nodes', async () => {
    await ensureSlurm();
    const out = join(work, 'slurm-%j.out');
    const sub = await run('sbatch', ['--parsable', '--nodes=2', '--job-name=funcx-smoke', `--output=${out}`,
      "--wrap=srun --ntasks-per-node=1 bash -c 'echo node=$SLURMD_NODENAME'"]);
    assert.equal(sub.code, 0, sub.stderr);
    const id = sub.stdout.trim().split(';')[0];
    assert.match(id, /^\d+$/);
    const state = await untilValue('job done', async () => (await run('squeue', ['--noheader', '--states=all', '--format=%t', `--job=${id}`])).stdout.trim(), { ok: (s) => ['CD', 'F', 'CA', 'TO', 'NF', 'OOM'].includes(s) });
    assert.equal(state, 'CD');
    const lines = readFileSync(out.replace('%j', id), 'utf8').trim().split('\n').sort();
    // Other tests may hold a node, so the pair is not always n1+n2: two distinct emulated nodes is the point.
    assert.equal(lines.length, 2, lines.join('|'));
    assert.notEqual(lines[0], lines[1]);
    for (const l of lines) assert.match(l, /^node=n[1-3]$/);
    const nodelist = (await run('squeue', ['--noheader', '--states=all', '--format=%N', `--job=${id}`])).stdout.trim();
    assert.equal(nodelist.replace(/^n\[(\d)[-,](\d)\]$/, 'n$1,n$2'), lines.map((l) => l.slice(5)).join(','));
  });
});

describe('Grid Engine test cluster', () => {
  test('qsub -terse runs a job with -pe smp 2 (NSLOTS=2); qstat lists it until it ends', async () => {
    await ensureGridEngine();
    const out = join(work, 'ge.out');
    const sub = await run('qsub', ['-terse', '-b', 'y', '-N', 'funcx-smoke', '-pe', 'smp', '2', '-j', 'y', '-o', out,
      '/bin/bash', '-c', '"echo slots=$NSLOTS job=$JOB_ID; sleep 1"']);
    assert.equal(sub.code, 0, sub.stderr);
    const id = sub.stdout.trim();
    assert.match(id, /^\d+$/);
    const listed = await run('qstat', []);
    assert.match(listed.stdout, new RegExp(`^\\s*${id}\\s+\\S+\\s+funcx-smo\\S*\\s+\\S+\\s+(qw|t|r)\\s`, 'm'));
    await untilValue('job gone from qstat', async () => (await run('qstat', ['-j', id])).code, { ok: (c) => c !== 0 });
    assert.equal(readFileSync(out, 'utf8').trim(), `slots=2 job=${id}`);
  });
});
