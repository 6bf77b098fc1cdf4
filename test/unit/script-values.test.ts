import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { ConfigError } from '../../src/errors.js';
import {
  checkName,
  checkOptionalName,
  checkPath,
  checkPositiveInt,
  checkSchedulerOptions,
  checkWorkerInit,
  envExports,
  formatHms,
  formatLsfWalltime,
  formatMinutes,
  formatWalltime,
  isSafeJobId,
  parseWalltime,
  shellQuote,
} from '../../providers/script-values.js';

test('names: scheduler names pass, shell syntax is refused naming field and value', () => {
  for (const ok of ['debug', 'gpu-a100', 'acct_01', 'normal.q', 'all.q@node1', 'haswell+ib', 'a:b']) {
    assert.equal(checkName('provider.queue', ok), ok);
  }
  for (const bad of ['debug; rm -rf ~', 'a b', '$(id)', '`id`', 'x\ny', '', "a'b", 'a"b', 'a|b', 'a>b']) {
    assert.throws(
      () => checkName('provider.queue', bad),
      (err: unknown) => err instanceof ConfigError && err.message.includes('provider.queue') && err.message.includes(JSON.stringify(bad)),
      `should refuse ${JSON.stringify(bad)}`,
    );
  }
  assert.throws(() => checkName('provider.queue', 42), ConfigError);
  assert.equal(checkOptionalName('provider.queue', undefined), undefined);
  assert.equal(checkOptionalName('provider.queue', ''), undefined);
});

test('positive integers and paths', () => {
  assert.equal(checkPositiveInt('n', 3), 3);
  for (const bad of [0, -1, 1.5, NaN, Infinity, '2']) assert.throws(() => checkPositiveInt('n', bad), ConfigError);
  assert.equal(checkPath('script_dir', '/home/a/.funcx/ep/submit_scripts'), '/home/a/.funcx/ep/submit_scripts');
  assert.throws(() => checkPath('script_dir', '/home/a b/x'), /script_dir/);
  assert.throws(() => checkPath('script_dir', '/tmp/$(id)'), ConfigError);
  assert.ok(isSafeJobId('1234.pbs01') && isSafeJobId('42') && isSafeJobId('12[].server'));
  assert.ok(!isSafeJobId('42; rm -rf ~') && !isSafeJobId('') && !isSafeJobId('4 2'));
});

test('walltime: parse HH:MM:SS, D-HH:MM:SS and seconds; refuse the rest', () => {
  assert.equal(parseWalltime('walltime', '00:30:00'), 1800);
  assert.equal(parseWalltime('walltime', '1:02:03'), 3723);
  assert.equal(parseWalltime('walltime', '100:00:00'), 360000);
  assert.equal(parseWalltime('walltime', '1-00:00:10'), 86410);
  assert.equal(parseWalltime('walltime', 90), 90);
  for (const bad of ['30', '00:60:00', '1h', '00:00:00', 0, -5, 1.5, '']) {
    assert.throws(() => parseWalltime('provider.walltime', bad), /provider\.walltime/);
  }
});

test('walltime: each scheduler format', () => {
  assert.equal(formatHms(3723), '01:02:03');
  assert.equal(formatHms(360000), '100:00:00');
  assert.equal(formatMinutes(1800), '30');
  assert.equal(formatMinutes(61), '2', 'Cobalt minutes round up');
  assert.equal(formatLsfWalltime(1800), '30');
  assert.equal(formatLsfWalltime(5400), '01:30');
  assert.equal(formatLsfWalltime(59), '1');
  assert.equal(formatWalltime('slurm', 90), '00:01:30');
  assert.equal(formatWalltime('pbspro', 7200), '02:00:00');
  assert.equal(formatWalltime('torque', 7200), '02:00:00');
  assert.equal(formatWalltime('gridengine', 7200), '02:00:00');
  assert.equal(formatWalltime('lsf', 7200), '02:00');
  assert.equal(formatWalltime('cobalt', 7200), '120');
});

test('shellQuote: sh reads back exactly the value, whatever it holds', () => {
  const values = ['plain', '', 'a b', "it's", '$(touch /tmp/pwned)', '`id`', 'a\nb', '"q"', '\\', "'", "x'y'z", '*'];
  for (const v of values) {
    const out = execFileSync('/bin/sh', ['-c', `printf '%s' ${shellQuote(v)}`], { encoding: 'utf8' });
    assert.equal(out, v);
  }
  assert.equal(shellQuote('simple-value_1.2'), 'simple-value_1.2');
  assert.throws(() => shellQuote('a\0b'), ConfigError);
});

test('envExports: names checked, values quoted, stable order', () => {
  assert.deepEqual(envExports('env', { B: 'two words', A: '1' }), ['export A=1', "export B='two words'"]);
  assert.throws(() => envExports('env', { 'BAD NAME': 'x' }), /BAD NAME/);
  assert.throws(() => envExports('env', { 'X;rm': 'x' }), ConfigError);
  assert.deepEqual(envExports('env', undefined), []);
});

test('worker_init is raw but refuses NUL; blank edges dropped', () => {
  assert.deepEqual(checkWorkerInit('worker_init', '\nmodule load nodejs\nsource ~/env.sh\n'), [
    'module load nodejs',
    'source ~/env.sh',
  ]);
  assert.deepEqual(checkWorkerInit('worker_init', ['a', 'b']), ['a', 'b']);
  assert.deepEqual(checkWorkerInit('worker_init', undefined), []);
  assert.throws(() => checkWorkerInit('provider.worker_init', 'echo a\0b'), /provider\.worker_init.*NUL/);
  assert.throws(() => checkWorkerInit('provider.worker_init', 5), ConfigError);
});

test('scheduler_options: only directive lines of the right scheduler', () => {
  assert.deepEqual(checkSchedulerOptions('so', '#SBATCH --gres=gpu:1\n\n  #SBATCH --mem=0\n', 'slurm'), [
    '#SBATCH --gres=gpu:1',
    '#SBATCH --mem=0',
  ]);
  assert.deepEqual(checkSchedulerOptions('so', ['#PBS -l mem=4gb'], 'pbspro'), ['#PBS -l mem=4gb']);
  assert.deepEqual(checkSchedulerOptions('so', '#$ -l h_vmem=4G', 'gridengine'), ['#$ -l h_vmem=4G']);
  assert.deepEqual(checkSchedulerOptions('so', '#BSUB -alloc_flags smt4', 'lsf'), ['#BSUB -alloc_flags smt4']);
  assert.deepEqual(checkSchedulerOptions('so', '#COBALT --attrs mcdram=cache', 'cobalt'), ['#COBALT --attrs mcdram=cache']);
  assert.throws(() => checkSchedulerOptions('provider.scheduler_options', 'rm -rf ~', 'slurm'), /provider\.scheduler_options.*#SBATCH/);
  assert.throws(() => checkSchedulerOptions('so', '#SBATCH --x\nrm -rf ~', 'slurm'), /rm -rf/);
  assert.throws(() => checkSchedulerOptions('so', '#PBS -q x', 'slurm'), ConfigError, 'other scheduler prefix');
  assert.throws(() => checkSchedulerOptions('so', '#SBATCHX', 'slurm'), ConfigError);
  assert.throws(() => checkSchedulerOptions('so', '#SBATCH --a\0', 'slurm'), /NUL/);
});
