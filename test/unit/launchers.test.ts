import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LaunchContext, Launcher } from '../../launchers/launcher.js';
import { SimpleLauncher, shellQuote } from '../../launchers/simple.js';
import { SingleNodeLauncher } from '../../launchers/single-node.js';
import { SrunLauncher } from '../../launchers/srun.js';
import { SrunMPILauncher } from '../../launchers/srun-mpi.js';
import { MpiExecLauncher } from '../../launchers/mpiexec.js';
import { MpiRunLauncher } from '../../launchers/mpirun.js';
import { AprunLauncher } from '../../launchers/aprun.js';
import { JsrunLauncher } from '../../launchers/jsrun.js';
import { GnuParallelLauncher } from '../../launchers/gnu-parallel.js';
import { WrappedLauncher } from '../../launchers/wrapped.js';
import { ConfigError } from '../../src/errors.js';

const ONE: LaunchContext = { nodesPerBlock: 1, tasksPerNode: 1 };
const TWO_BY_TWO: LaunchContext = { nodesPerBlock: 2, tasksPerNode: 2 };

// Single quotes, double quotes, $VARS, arithmetic and runs of spaces: everything a naive wrapper breaks.
const TRICKY = `printf '%s|%s|%s|%s\\n' "it's" "$FUNCX_T_VAR" 'a  b' "$((20 + 22))"`;
const TRICKY_VAR = `x  $y "z" 'q'`;
const TRICKY_OUT = `it's|${TRICKY_VAR}|a  b|42`;

// A stand-in for srun/mpiexec/mpirun/aprun/jsrun: logs its arguments, finds how many copies it was asked
// for (--ntasks=N, -n N or -np N) and runs the trailing command that many times.
const FAKE_LAUNCHER = `#!/bin/bash
printf '%s\\n' "$(basename "$0") $*" >> "$FAKE_LOG"
count=1
while [ $# -gt 0 ]; do
  case "$1" in
    --ntasks=*) count="\${1#--ntasks=}"; shift ;;
    -n|-np) count="$2"; shift 2 ;;
    --*) shift ;;
    -*) shift 2 ;;
    *) break ;;
  esac
done
for ((i = 0; i < count; i++)); do "$@" || exit $?; done
`;

// A stand-in for GNU parallel: logs the ssh login file, then runs the command once per input after :::.
const FAKE_PARALLEL = `#!/bin/bash
while [ $# -gt 0 ]; do
  case "$1" in
    --sshloginfile) login="$2"; shift 2 ;;
    --jobs|--workdir|--env) printf '%s\\n' "parallel $1 $2" >> "$FAKE_LOG"; shift 2 ;;
    -q) shift; break ;;
    *) shift ;;
  esac
done
cmd=()
while [ $# -gt 0 ] && [ "$1" != ":::" ]; do cmd+=("$1"); shift; done
shift
printf 'hosts: %s\\n' "$(tr '\\n' ' ' < "$login")" >> "$FAKE_LOG"
for a in "$@"; do "\${cmd[@]}" "$a"; done
`;

const FAKE_SCONTROL = `#!/bin/bash
[ "$1 $2" = "show hostnames" ] || exit 2
echo n1; echo n2
`;

interface Sandbox {
  dir: string;
  log: string;
  run(line: string, shell?: string, env?: Record<string, string>): { code: number | null; stdout: string; stderr: string };
  logLines(): string[];
}

function sandbox(): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), 'funcx-launchers-'));
  const bin = join(dir, 'bin');
  spawnSync('mkdir', ['-p', bin, join(dir, 'tmp')]);
  for (const name of ['srun', 'mpiexec', 'mpirun', 'aprun', 'jsrun']) writeFileSync(join(bin, name), FAKE_LAUNCHER);
  writeFileSync(join(bin, 'parallel'), FAKE_PARALLEL);
  writeFileSync(join(bin, 'scontrol'), FAKE_SCONTROL);
  for (const f of readdirSync(bin)) chmodSync(join(bin, f), 0o755);
  const log = join(dir, 'calls.log');
  writeFileSync(log, '');
  return {
    dir,
    log,
    run(line, shell = '/bin/bash', env = {}) {
      // A clean environment: no scheduler variables leak in from the machine running the tests.
      const r = spawnSync(shell, ['-c', line], {
        encoding: 'utf8',
        cwd: dir,
        env: {
          PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
          HOME: dir,
          TMPDIR: join(dir, 'tmp'),
          FAKE_LOG: log,
          FUNCX_T_VAR: TRICKY_VAR,
          ...env,
        },
      });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    logLines: () => readFileSync(log, 'utf8').split('\n').filter((l) => l !== ''),
  };
}

function outputLines(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l !== '');
}

test('shellQuote keeps plain words and single-quotes the rest', () => {
  assert.equal(shellQuote('abc-1.2'), 'abc-1.2');
  assert.equal(shellQuote(''), "''");
  assert.equal(shellQuote("it's"), `'it'"'"'s'`);
  assert.throws(() => shellQuote('a\0b'), ConfigError);
});

test('launch lines for 1 node and for 2 nodes x 2 tasks', () => {
  const q = shellQuote('funcx-manager --block 3');
  const cases: Array<[Launcher, LaunchContext, string]> = [
    [new SimpleLauncher(), ONE, 'funcx-manager --block 3'],
    [new SimpleLauncher(), TWO_BY_TWO, 'funcx-manager --block 3'],
    [new SrunLauncher(), ONE, `srun --ntasks=1 --ntasks-per-node=1 --nodes=1 /bin/bash -c ${q}`],
    [new SrunLauncher(), TWO_BY_TWO, `srun --ntasks=4 --ntasks-per-node=2 --nodes=2 /bin/bash -c ${q}`],
    [
      new SrunLauncher({ overrides: ' --cpu-bind=none --mpi=pmi2 ' }),
      TWO_BY_TWO,
      `srun --ntasks=4 --ntasks-per-node=2 --nodes=2 --cpu-bind=none --mpi=pmi2 /bin/bash -c ${q}`,
    ],
    [new MpiExecLauncher(), ONE, `mpiexec -n 1 -ppn 1 /bin/bash -c ${q}`],
    [new MpiExecLauncher({ overrides: '--cpu-bind none' }), TWO_BY_TWO, `mpiexec -n 4 -ppn 2 --cpu-bind none /bin/bash -c ${q}`],
    [new MpiRunLauncher(), ONE, `mpirun -np 1 /bin/bash -c ${q}`],
    [new MpiRunLauncher(), TWO_BY_TWO, `mpirun -np 4 /bin/bash -c ${q}`],
    [new AprunLauncher(), ONE, `aprun -n 1 -N 1 /bin/bash -c ${q}`],
    [new AprunLauncher(), { ...TWO_BY_TWO, coresPerNode: 64 }, `aprun -n 4 -N 2 -d 32 /bin/bash -c ${q}`],
    [new JsrunLauncher(), ONE, `jsrun -n 1 -r 1 -a 1 /bin/bash -c ${q}`],
    [
      new JsrunLauncher(),
      { nodesPerBlock: 2, tasksPerNode: 1, coresPerNode: 42, gpusPerNode: 6 },
      `jsrun -n 2 -r 1 -a 1 -c 42 -g 6 /bin/bash -c ${q}`,
    ],
    [
      new JsrunLauncher({ overrides: '--smpiargs=none' }),
      { ...TWO_BY_TWO, coresPerNode: 42, gpusPerNode: 6 },
      `jsrun -n 4 -r 2 -a 1 -c 21 -g 3 --smpiargs=none /bin/bash -c ${q}`,
    ],
    [new WrappedLauncher({ prepend: 'time' }), ONE, `time /bin/bash -c ${q}`],
    [
      new WrappedLauncher({ prepend: 'singularity exec img.sif' }),
      TWO_BY_TWO,
      `singularity exec img.sif /bin/bash -c ${q}`,
    ],
  ];
  for (const [launcher, ctx, expected] of cases) {
    assert.equal(launcher.wrap('funcx-manager --block 3', ctx), expected, `${launcher.name} ${JSON.stringify(ctx)}`);
  }
});

test('multi-line launchers write the counts they were given', () => {
  const single = new SingleNodeLauncher().wrap('funcx-manager', TWO_BY_TWO);
  assert.match(single, /-lt 2 \]/);
  assert.match(single, /^funcx_run\(\) \{\nfuncx-manager\n\}/);
  const mpi = new SrunMPILauncher().wrap('funcx-manager', { ...TWO_BY_TWO, coresPerNode: 8 });
  assert.match(mpi, /-lt 4 \]/);
  assert.match(mpi, /srun --exclusive --nodes=1 --ntasks=1 --cpus-per-task=4 \/bin\/bash -c funcx-manager &/);
  const par = new GnuParallelLauncher({ overrides: '--retries=2' }).wrap('funcx-manager', TWO_BY_TWO);
  assert.match(par, /--jobs 2 --sshloginfile "\$funcx_nodes" --retries=2 -q \/bin\/bash -c funcx-manager ::: 1 2 3 4/);
  assert.match(new GnuParallelLauncher().wrap('m', ONE), /::: 1$/m);
});

test('names are distinct and debug adds a note on stderr', () => {
  const all: Launcher[] = [
    new SimpleLauncher(), new SingleNodeLauncher(), new SrunLauncher(), new SrunMPILauncher(), new MpiExecLauncher(),
    new MpiRunLauncher(), new AprunLauncher(), new JsrunLauncher(), new GnuParallelLauncher(), new WrappedLauncher(),
  ];
  assert.equal(new Set(all.map((l) => l.name)).size, all.length);
  const line = new SrunLauncher({ debug: true }).wrap('m', TWO_BY_TWO);
  assert.match(line, /^echo 'funcx launcher srun: 2 node\(s\) x 2 task\(s\) per node' >&2\nsrun /);
  assert.doesNotMatch(new SrunLauncher().wrap('m', TWO_BY_TWO), /echo/);
});

test('overrides and prepend with NUL or line breaks are refused, naming launcher and field', () => {
  const makers: Array<[string, (o: { overrides: string }) => Launcher]> = [
    ['simple', (o) => new SimpleLauncher(o)],
    ['single-node', (o) => new SingleNodeLauncher(o)],
    ['srun', (o) => new SrunLauncher(o)],
    ['srun-mpi', (o) => new SrunMPILauncher(o)],
    ['mpiexec', (o) => new MpiExecLauncher(o)],
    ['mpirun', (o) => new MpiRunLauncher(o)],
    ['aprun', (o) => new AprunLauncher(o)],
    ['jsrun', (o) => new JsrunLauncher(o)],
    ['gnu-parallel', (o) => new GnuParallelLauncher(o)],
    ['wrapped', (o) => new WrappedLauncher(o)],
  ];
  for (const [name, make] of makers) {
    for (const bad of ['--x\n rm -rf ~', '--x\0', '--a\r--b']) {
      assert.throws(
        () => make({ overrides: bad }),
        (e: unknown) => e instanceof ConfigError && e.message.startsWith(`${name} launcher: overrides`),
        `${name} ${JSON.stringify(bad)}`,
      );
    }
  }
  assert.throws(
    () => new WrappedLauncher({ prepend: 'time\nrm -rf ~' }),
    (e: unknown) => e instanceof ConfigError && /wrapped launcher: prepend/.test(e.message),
  );
});

test('bad context numbers are refused before they reach a script', () => {
  for (const ctx of [
    { nodesPerBlock: 0, tasksPerNode: 1 },
    { nodesPerBlock: 1.5, tasksPerNode: 1 },
    { nodesPerBlock: 1, tasksPerNode: 0 },
    { nodesPerBlock: 1, tasksPerNode: 1, coresPerNode: -2 },
    { nodesPerBlock: Number.NaN, tasksPerNode: 1 },
  ]) {
    assert.throws(() => new SrunLauncher().wrap('m', ctx), (e: unknown) => e instanceof ConfigError && /srun launcher/.test(e.message));
  }
  assert.throws(() => new JsrunLauncher().wrap('m', { nodesPerBlock: 1, tasksPerNode: 1, gpusPerNode: -1 }), /gpus_per_node/);
  assert.doesNotThrow(() => new JsrunLauncher().wrap('m', { nodesPerBlock: 1, tasksPerNode: 1, gpusPerNode: 0 }));
});

test('simple and wrapped lines run the command intact under bash', () => {
  const sb = sandbox();
  try {
    let r = sb.run(new SimpleLauncher().wrap(TRICKY, TWO_BY_TWO));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(outputLines(r.stdout), [TRICKY_OUT]);
    r = sb.run(new WrappedLauncher({ prepend: 'env FUNCX_W=1' }).wrap(`${TRICKY}; echo "w=$FUNCX_W"`, ONE));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(outputLines(r.stdout), [TRICKY_OUT, 'w=1']);
  } finally {
    rmSync(sb.dir, { recursive: true, force: true });
  }
});

test('single-node runs tasksPerNode copies under bash and sh, waits for all, keeps a failure', () => {
  const sb = sandbox();
  try {
    for (const shell of ['/bin/bash', '/bin/sh']) {
      const r = sb.run(new SingleNodeLauncher().wrap(TRICKY, { nodesPerBlock: 2, tasksPerNode: 3 }), shell);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(outputLines(r.stdout), [TRICKY_OUT, TRICKY_OUT, TRICKY_OUT], shell);
    }
    // Waits: the copies sleep, and a line after the launcher sees all their output already written.
    const slow = new SingleNodeLauncher().wrap('sleep 0.3; echo done', { nodesPerBlock: 1, tasksPerNode: 2 });
    let r = sb.run(`${slow}\necho after`);
    assert.deepEqual(outputLines(r.stdout), ['done', 'done', 'after']);
    // An unexported variable set before the line (as worker_init would) is seen by the copies.
    r = sb.run(`FUNCX_LOCAL=seen\n${new SingleNodeLauncher().wrap('echo "$FUNCX_LOCAL"', ONE)}`);
    assert.deepEqual(outputLines(r.stdout), ['seen']);
    r = sb.run(new SingleNodeLauncher().wrap('exit 3', TWO_BY_TWO));
    assert.equal(r.code, 3);
  } finally {
    rmSync(sb.dir, { recursive: true, force: true });
  }
});

test('srun, mpiexec, mpirun, aprun and jsrun pass the command intact to the fake launcher', () => {
  const sb = sandbox();
  try {
    const cases: Array<[Launcher, string]> = [
      [new SrunLauncher({ overrides: '--cpu-bind=none' }), 'srun --ntasks=4 --ntasks-per-node=2 --nodes=2 --cpu-bind=none /bin/bash -c'],
      [new MpiExecLauncher(), 'mpiexec -n 4 -ppn 2 /bin/bash -c'],
      [new MpiRunLauncher(), 'mpirun -np 4 /bin/bash -c'],
      [new AprunLauncher(), 'aprun -n 4 -N 2 /bin/bash -c'],
      [new JsrunLauncher(), 'jsrun -n 4 -r 2 -a 1 /bin/bash -c'],
    ];
    for (const [launcher, argsStart] of cases) {
      writeFileSync(sb.log, '');
      const r = sb.run(launcher.wrap(TRICKY, TWO_BY_TWO));
      assert.equal(r.code, 0, `${launcher.name}: ${r.stderr}`);
      assert.deepEqual(outputLines(r.stdout), Array(4).fill(TRICKY_OUT), launcher.name);
      const calls = sb.logLines();
      assert.equal(calls.length, 1, launcher.name);
      assert.ok(calls[0]!.startsWith(argsStart), `${launcher.name}: ${calls[0]}`);
    }
  } finally {
    rmSync(sb.dir, { recursive: true, force: true });
  }
});

test('srun-mpi starts one step per copy with its share of the node CPUs', () => {
  const sb = sandbox();
  try {
    // cores unknown at render time: taken from SLURM_CPUS_ON_NODE inside the job.
    let r = sb.run(new SrunMPILauncher().wrap(TRICKY, TWO_BY_TWO), '/bin/bash', { SLURM_CPUS_ON_NODE: '8' });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(outputLines(r.stdout), Array(4).fill(TRICKY_OUT));
    let calls = sb.logLines();
    assert.equal(calls.length, 4);
    for (const c of calls) assert.ok(c.startsWith('srun --exclusive --nodes=1 --ntasks=1 --cpus-per-task=4 /bin/bash -c'), c);
    writeFileSync(sb.log, '');
    r = sb.run(new SrunMPILauncher().wrap('exit 5', { nodesPerBlock: 1, tasksPerNode: 1, coresPerNode: 2 }));
    assert.equal(r.code, 5);
    calls = sb.logLines();
    assert.deepEqual(calls.map((c) => c.split(' ').slice(0, 5).join(' ')), ['srun --exclusive --nodes=1 --ntasks=1 --cpus-per-task=2']);
  } finally {
    rmSync(sb.dir, { recursive: true, force: true });
  }
});

test('gnu-parallel reads each scheduler node list, runs every copy intact and cleans up', () => {
  const sb = sandbox();
  try {
    const nodefile = join(sb.dir, 'nodefile');
    writeFileSync(nodefile, 'n2\nn1\nn2\nn1\n');
    const line = new GnuParallelLauncher().wrap(TRICKY, TWO_BY_TWO);
    const cases: Array<[Record<string, string>, string]> = [
      [{ PBS_NODEFILE: nodefile }, 'hosts: n1 n2 '],
      [{ COBALT_NODEFILE: nodefile }, 'hosts: n1 n2 '],
      [{ SLURM_JOB_NODELIST: 'n[1-2]' }, 'hosts: n1 n2 '],
      [{ LSB_DJOB_HOSTFILE: nodefile }, 'hosts: n1 n2 '],
      [{ LSB_HOSTS: 'h2 h1 h1 h2' }, 'hosts: h1 h2 '],
      [{}, 'hosts: : '],
    ];
    for (const [env, hosts] of cases) {
      writeFileSync(sb.log, '');
      const r = sb.run(line, '/bin/bash', env);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(outputLines(r.stdout), Array(4).fill(TRICKY_OUT), JSON.stringify(env));
      assert.ok(sb.logLines().includes(hosts), `${JSON.stringify(env)}: ${sb.logLines().join(' / ')}`);
      assert.ok(sb.logLines().includes('parallel --jobs 2'));
    }
    assert.deepEqual(readdirSync(join(sb.dir, 'tmp')), [], 'the node list file is removed');
  } finally {
    rmSync(sb.dir, { recursive: true, force: true });
  }
});
