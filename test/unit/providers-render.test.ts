/**
 * Rendering: the header lines users expect from each scheduler, template lookup order (profile folder, site
 * folder, built-in), and values that would inject shell refused before any script exists.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Channel, CommandResult } from '../../providers/channels/channel.js';
import type { Launcher, LaunchContext } from '../../launchers/launcher.js';
import type { ClusterProvider } from '../../providers/cluster.js';
import { ConfigError } from '../../src/errors.js';
import { SlurmProvider } from '../../providers/slurm.js';
import { PBSProProvider } from '../../providers/pbspro.js';
import { TorqueProvider } from '../../providers/torque.js';
import { CobaltProvider } from '../../providers/cobalt.js';
import { LSFProvider } from '../../providers/lsf.js';
import { GridEngineProvider } from '../../providers/gridengine.js';
import { builtinTemplateDir, renderTemplate } from '../../providers/templates.js';
import type { BlockRequest, ExecutionProvider } from '../../providers/provider.js';
import { Config } from '../../src/config/config.js';
import { requestFor as resolvedRequest } from '../helpers/block-request.js';

/** Only scriptDir is read when rendering; submit answers "Submitted batch job 7" for slurm tests. */
function fakeChannel(scriptDir = '/scratch/alice/funcx/scripts'): Channel & { written: string[] } {
  const written: string[] = [];
  return {
    kind: 'fake', scriptDir, isRemote: false, written,
    async run(command: string): Promise<CommandResult> {
      return { code: 0, stdout: command.startsWith('sbatch') ? 'Submitted batch job 7\n' : '', stderr: '', timedOut: false };
    },
    async writeFile(path: string, content: string | Buffer) {
      written.push(String(content));
      return path;
    },
    async readFile() { return Buffer.from(''); },
    async exposePort(host: string, port: number) { return { host, port }; },
    async close() {},
  };
}

const contexts: LaunchContext[] = [];
const launcher: Launcher = {
  name: 'fake',
  wrap: (cmd: string, ctx: LaunchContext) => {
    contexts.push(ctx);
    return `fake-launch -N ${ctx.nodesPerBlock} -c ${ctx.coresPerNode ?? '-'} ${cmd}`;
  },
};
const request = {
  blockId: '3',
  command: 'funcx-manager --block 3',
  jobName: 'funcx-block-3',
  env: { FUNCX_BLOCK_ID: '3', TRICKY: "it's $(whoami) `id`" },
};
/** `request` with the nodes and walltime the config layer resolves from `p`'s own fields. */
const requestFor = (p: ExecutionProvider): BlockRequest => resolvedRequest(p, request);
const renderFor = async (p: ExecutionProvider): Promise<string> => p.render(requestFor(p));
const common = { channel: fakeChannel(), launcher, walltime: '01:30:00', worker_init: 'module load nodejs' };

const siteDir = mkdtempSync(join(tmpdir(), 'funcx-site-'));
before(() => {
  process.env.FUNCX_SITE_TEMPLATES = siteDir;
});
after(() => rmSync(siteDir, { recursive: true, force: true }));

/** Header lines each scheduler's users expect (REFERENCE.md "Script headers users expect"). */
const renders: Array<{ name: string; make: () => ClusterProvider; expect: RegExp[]; absent?: RegExp[] }> = [
  {
    name: 'slurm',
    make: () => new SlurmProvider({ ...common, nodes_per_block: 2, cores_per_node: 8, mem_per_node: 16, partition: 'debug', account: 'proj1', qos: 'normal', constraint: 'haswell', exclusive: true, scheduler_options: '#SBATCH --gres=gpu:1' }),
    expect: [
      /^#!\/bin\/bash\n/, /^#SBATCH --job-name=funcx-block-3$/m, /^#SBATCH --nodes=2$/m, /^#SBATCH --ntasks-per-node=1$/m,
      /^#SBATCH --cpus-per-task=8$/m, /^#SBATCH --time=01:30:00$/m, /^#SBATCH --partition=debug$/m, /^#SBATCH --account=proj1$/m,
      /^#SBATCH --qos=normal$/m, /^#SBATCH --constraint=haswell$/m, /^#SBATCH --exclusive$/m, /^#SBATCH --mem=16G$/m,
      /^#SBATCH --output=\/scratch\/alice\/funcx\/scripts\/funcx-block-3\.\w+\.stdout$/m,
      /^#SBATCH --error=\/scratch\/alice\/funcx\/scripts\/funcx-block-3\.\w+\.stderr$/m, /^#SBATCH --gres=gpu:1$/m,
      /^fake-launch -N 2 -c 8 funcx-manager --block 3$/m,
    ],
  },
  {
    name: 'pbspro',
    make: () => new PBSProProvider({ ...common, nodes_per_block: 2, cores_per_node: 36, queue: 'workq', account: 'ABC' }),
    expect: [
      /^#PBS -N funcx-block-3$/m, /^#PBS -l select=2:ncpus=36:mpiprocs=1$/m, /^#PBS -l walltime=01:30:00$/m,
      /^#PBS -l place=scatter$/m, /^#PBS -q workq$/m, /^#PBS -A ABC$/m, /^#PBS -o \/scratch\/.*\.stdout$/m, /^#PBS -e \/scratch\/.*\.stderr$/m,
    ],
  },
  {
    name: 'torque',
    make: () => new TorqueProvider({ ...common, nodes_per_block: 2, cores_per_node: 16, queue: 'batch' }),
    expect: [/^#PBS -N funcx-block-3$/m, /^#PBS -l nodes=2:ppn=16$/m, /^#PBS -l walltime=01:30:00$/m, /^#PBS -q batch$/m, /^#PBS -o /m, /^#PBS -e /m],
    absent: [/^#PBS -A/m],
  },
  {
    name: 'cobalt',
    make: () => new CobaltProvider({ ...common, nodes_per_block: 4, queue: 'debug-cache-quad', account: 'MyProj', scheduler_options: '#COBALT --attrs mcdram=cache' }),
    expect: [/^#COBALT --attrs mcdram=cache$/m, /-n 4 -t 90 -q debug-cache-quad -A MyProj --mode script/, /^fake-launch -N 4 /m],
  },
  {
    name: 'lsf',
    make: () => new LSFProvider({ ...common, nodes_per_block: 2, queue: 'batch', project: 'CSC123', exclusive: true }),
    expect: [/^#BSUB -J funcx-block-3$/m, /^#BSUB -nnodes 2$/m, /^#BSUB -W 01:30$/m, /^#BSUB -q batch$/m, /^#BSUB -P CSC123$/m, /^#BSUB -x$/m, /^#BSUB -o /m, /^#BSUB -e /m],
    absent: [/^#BSUB -n /m],
  },
  {
    name: 'lsf by slots',
    make: () => new LSFProvider({ ...common, nodes_per_block: 2, cores_per_node: 4, request_by_nodes: false }),
    expect: [/^#BSUB -n 8$/m, /^#BSUB -R "span\[ptile=4\]"$/m],
    absent: [/-nnodes/],
  },
  {
    name: 'gridengine',
    make: () => new GridEngineProvider({ ...common, cores_per_node: 2, queue: 'all.q', project: 'p1' }),
    expect: [/^#\$ -N funcx-block-3$/m, /^#\$ -pe smp 2$/m, /^#\$ -l h_rt=01:30:00$/m, /^#\$ -q all\.q$/m, /^#\$ -P p1$/m, /^#\$ -cwd$/m, /^#\$ -S \/bin\/bash$/m, /^#\$ -o /m, /^#\$ -e /m],
  },
];

describe('render: the headers users expect, then worker_init, exports and the launch line', () => {
  for (const r of renders) {
    test(r.name, async () => {
      const script = await renderFor(r.make());
      for (const re of r.expect) assert.match(script, re);
      for (const re of r.absent ?? []) assert.doesNotMatch(script, re);
      assert.match(script, /^module load nodejs$/m);
      assert.match(script, /^export FUNCX_BLOCK_ID=3$/m);
      // worker_init, then exports, then the launch line: managers start in the prepared environment.
      const order = ['module load nodejs', 'export FUNCX_BLOCK_ID', 'fake-launch'].map((s) => script.indexOf(s));
      assert.deepEqual([...order].sort((a, b) => a - b), order);
      assert.ok(!/{{|}}/.test(script), 'no template syntax left');
      execFileSync('bash', ['-n'], { input: script }); // the script parses
      const printed = execFileSync('bash', ['-c', `${script.match(/^export TRICKY=.*$/m)![0]}; printf '%s' "$TRICKY"`], { encoding: 'utf8' });
      assert.equal(printed, request.env.TRICKY, 'env values arrive exactly, never run');
    });
  }

  test('the launcher gets nodes, one task per node and cores; block overrides win', async () => {
    contexts.length = 0;
    const p = new SlurmProvider({ ...common, nodes_per_block: 2, cores_per_node: 8 });
    const script = await p.render({ ...requestFor(p), nodesPerBlock: 3, walltimeS: 600 });
    assert.deepEqual(contexts.at(-1), { nodesPerBlock: 3, tasksPerNode: 1, coresPerNode: 8 });
    assert.match(script, /^#SBATCH --nodes=3$/m);
    assert.match(script, /^#SBATCH --time=00:10:00$/m);
  });

  test('defaults (resolved by the config layer): 1 node, 30 minutes, limits 0/0/1/1, no optional headers', async () => {
    const p = new SlurmProvider({ channel: fakeChannel(), launcher });
    assert.deepEqual(p.blockOptions, {}, 'the provider keeps its block fields raw');
    const s = new Config({ provider: p }).strategy;
    assert.deepEqual([s.nodes, s.walltimeS], [{ min: 1, max: 1 }, { min: 1800, max: 1800 }]);
    assert.deepEqual([s.initBlocks, s.minBlocks, s.maxBlocks, s.parallelism], [0, 0, 1, 1]);
    const script = await p.render(requestFor(p));
    assert.match(script, /^#SBATCH --time=00:30:00$/m);
    for (const opt of ['partition', 'account', 'qos', 'constraint', 'exclusive', 'mem', 'cpus-per-task']) {
      assert.doesNotMatch(script, new RegExp(`--${opt}`));
    }
  });

  test('render is what submit writes', async () => {
    const channel = fakeChannel();
    const p = new SlurmProvider({ channel, launcher, partition: 'debug' });
    const dry = await p.render(requestFor(p));
    await p.submit(requestFor(p));
    const strip = (s: string) => s.replace(/funcx-block-3\.\w+\./g, 'funcx-block-3.X.');
    assert.equal(strip(channel.written[0]!), strip(dry));
  });
});

describe('template lookup: profile folder, then $FUNCX_SITE_TEMPLATES, then built-in', () => {
  const profileDir = mkdtempSync(join(tmpdir(), 'funcx-profile-'));
  after(() => rmSync(profileDir, { recursive: true, force: true }));
  const make = (extra: object = {}) => new SlurmProvider({ channel: fakeChannel(), launcher, profile_dir: profileDir, ...extra });

  test('the built-in folder holds a template for every scheduler', () => {
    for (const name of ['slurm', 'pbspro', 'torque', 'cobalt', 'lsf', 'gridengine']) {
      assert.ok(existsSync(join(builtinTemplateDir(), `${name}.sh.hbs`)), name);
    }
  });

  test('order of precedence, and an explicit template by name or path', async () => {
    assert.match(await renderFor(make()), /^#SBATCH --job-name=funcx-block-3$/m);
    assert.equal(make().findTemplate().origin, 'builtin');

    writeFileSync(join(siteDir, 'slurm.sh.hbs'), '#!/bin/bash\n# SITE {{job_name}}\n{{launch_command}}\n');
    assert.match(await renderFor(make()), /^# SITE funcx-block-3$/m);
    assert.equal(make().findTemplate().origin, 'site');

    writeFileSync(join(profileDir, 'slurm.sh.hbs'), '#!/bin/bash\n# PROFILE {{job_name}} {{partition}}\n{{launch_command}}\n');
    assert.match(await renderFor(make({ partition: 'gpu' })), /^# PROFILE funcx-block-3 gpu$/m);
    assert.equal(make().findTemplate().origin, 'profile');

    writeFileSync(join(siteDir, 'slurm-gpu.sh.hbs'), '#!/bin/bash\n# SITE GPU\n');
    assert.match(await renderFor(make({ template: 'slurm-gpu.sh.hbs' })), /# SITE GPU/);
    const elsewhere = mkdtempSync(join(tmpdir(), 'funcx-tpl-'));
    writeFileSync(join(elsewhere, 'mine.hbs'), '# MINE {{nodes}}\n');
    assert.equal(await renderFor(make({ template: join(elsewhere, 'mine.hbs') })), '# MINE 1\n');
    rmSync(elsewhere, { recursive: true, force: true });

    await assert.rejects(renderFor(make({ template: 'nope.sh.hbs' })), (err: unknown) =>
      err instanceof ConfigError && err.message.includes('nope.sh.hbs') && err.message.includes(profileDir) && err.message.includes(siteDir));
    rmSync(join(siteDir, 'slurm.sh.hbs'));
    rmSync(join(profileDir, 'slurm.sh.hbs'));
  });

  test('a template that names a missing field or does not compile is a ConfigError naming the file', async () => {
    mkdirSync(profileDir, { recursive: true });
    writeFileSync(join(profileDir, 'bad.sh.hbs'), '#SBATCH --partiton={{partiton}}\n');
    await assert.rejects(renderFor(make({ template: 'bad.sh.hbs' })), /bad\.sh\.hbs.*partiton/);
    writeFileSync(join(profileDir, 'broken.sh.hbs'), '{{#if nodes}}\n');
    await assert.rejects(renderFor(make({ template: 'broken.sh.hbs' })), /broken\.sh\.hbs/);
  });

  test('a context that was not validated is never rendered', () => {
    assert.throws(() => renderTemplate('{{queue}}', { queue: 'x; rm -rf ~' }), /not validated/);
  });
});

describe('values that would reach the shell are refused', () => {
  const refuse = (fn: () => unknown, ...needles: string[]) =>
    assert.throws(fn, (err: unknown) => err instanceof ConfigError && needles.every((n) => err.message.includes(n)), needles.join(' '));

  test('names with shell syntax, per scheduler', () => {
    const bad = 'debug; rm -rf ~';
    refuse(() => new SlurmProvider({ launcher, partition: bad }), 'provider.partition', JSON.stringify(bad));
    refuse(() => new SlurmProvider({ launcher, account: '$(id)' }), 'provider.account');
    refuse(() => new SlurmProvider({ launcher, qos: 'a b' }), 'provider.qos');
    refuse(() => new SlurmProvider({ launcher, constraint: 'x\n#SBATCH --x' }), 'provider.constraint');
    refuse(() => new PBSProProvider({ launcher, queue: bad }), 'provider.queue', JSON.stringify(bad));
    refuse(() => new TorqueProvider({ launcher, account: '`id`' }), 'provider.account');
    refuse(() => new CobaltProvider({ launcher, queue: bad }), 'provider.queue');
    refuse(() => new LSFProvider({ launcher, project: 'p|q' }), 'provider.project');
    refuse(() => new GridEngineProvider({ launcher, queue: bad }), 'provider.queue');
  });

  test('raw lines: scheduler_options must be directives, worker_init no NUL', () => {
    refuse(() => new SlurmProvider({ launcher, scheduler_options: 'rm -rf ~' }), 'provider.scheduler_options', '#SBATCH');
    refuse(() => new PBSProProvider({ launcher, scheduler_options: '#SBATCH --x' }), '#PBS');
    refuse(() => new SlurmProvider({ launcher, worker_init: 'echo \0' }), 'provider.worker_init');
  });

  test('bad job names, block ids, env names and script folders fail at render', async () => {
    const p = new SlurmProvider({ channel: fakeChannel(), launcher });
    await assert.rejects(p.render({ ...requestFor(p), jobName: 'x; reboot' }), /job name/);
    await assert.rejects(p.render({ ...requestFor(p), blockId: '$(id)' }), /block id/);
    await assert.rejects(p.render({ ...requestFor(p), env: { 'A;B': '1' } }), /A;B/);
    const spaced = new SlurmProvider({ channel: fakeChannel('/home/a b/scripts'), launcher });
    await assert.rejects(spaced.render(requestFor(spaced)), /script_dir/);
  });

  test('options are checked: unknown, unsupported, out of range', () => {
    refuse(() => new SlurmProvider({ launcher, partiton: 'debug' } as never), 'provider.partiton', 'unknown');
    refuse(() => new CobaltProvider({ launcher, mem_per_node: 4 }), 'provider.mem_per_node', 'cobalt');
    refuse(() => new GridEngineProvider({ launcher, nodes_per_block: 2 }), 'nodes_per_block');
    // Block fields are checked once, by the config layer, when the profile's Config is built.
    const config = (o: ConstructorParameters<typeof SlurmProvider>[0]) => () => new Config({ provider: new SlurmProvider({ launcher, ...o }) });
    refuse(config({ walltime: '30m' }), 'provider.walltime');
    refuse(config({ nodes_per_block: 0 }), 'provider.nodes_per_block');
    refuse(config({ min_blocks: 2, max_blocks: 1 }), 'provider.min_blocks');
    refuse(config({ init_blocks: 3, max_blocks: 2 }), 'provider.init_blocks');
    refuse(config({ parallelism: 1.5 }), 'provider.parallelism');
    refuse(config({ max_blocks: 0 }), 'provider.max_blocks');
    refuse(() => new SlurmProvider({ launcher, cmd_timeout: 0 }), 'cmd_timeout');
    refuse(() => new LSFProvider({ launcher, request_by_nodes: false }), 'cores_per_node');
  });

  test('Grid Engine job names lose the characters it refuses', async () => {
    const ge = new GridEngineProvider({ channel: fakeChannel(), launcher });
    const script = await ge.render({ ...requestFor(ge), jobName: 'ep:main@3' });
    assert.match(script, /^#\$ -N ep_main_3$/m);
  });
});
