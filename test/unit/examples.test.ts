/**
 * Every profile in examples/ loads through the real profile loader (tsx, importing 'funcx-endpoint' by name)
 * and renders the script its first block would submit, with the scheduler's usual header lines. The built-in
 * profile templates (examples/templates/) and the sysadmin's site folder (examples/site-templates/) too.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from '../../src/config/load.js';
import type { Config } from '../../src/config/config.js';
import { requestFor } from '../helpers/block-request.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const EXAMPLES = join(ROOT, 'examples');

const request = {
  blockId: '0',
  command: 'funcx-manager --block-id 0',
  jobName: 'funcx-example-0',
  env: { FUNCX_RESULT_SIZE_LIMIT: '1024' },
};

/** What each example's script must say (header lines users expect, and the launcher's line). */
const EXPECTED: Record<string, { label: string; lines: RegExp[] }> = {
  'slurm-local.ts': { label: 'slurm', lines: [/^#SBATCH --partition=debug$/m, /^#SBATCH --nodes=2$/m, /^#SBATCH --time=00:10:00$/m, /^srun .*--nodes=2 .*funcx-manager/m] },
  'slurm-ssh.ts': { label: 'slurm', lines: [/^#SBATCH --partition=debug$/m, /^#SBATCH --nodes=2$/m, /^#SBATCH --output=\/tmp\/funcx-ssh\/submit_scripts\//m, /^srun /m] },
  'pbspro.ts': { label: 'pbspro', lines: [/^#PBS -l select=2:ncpus=36/m, /^#PBS -q workq$/m, /^#PBS -A MYPROJECT$/m, /^module load nodejs$/m, /^mpiexec -n 2 /m] },
  'cobalt.ts': { label: 'cobalt', lines: [/-n 2 -t 30 -q debug-cache-quad -A MYPROJECT/, /^aprun -n 2 -N 1 -d 64 -cc depth -j 1 /m] },
  'lsf.ts': { label: 'lsf', lines: [/^#BSUB -nnodes 2$/m, /^#BSUB -P ABC123$/m, /^#BSUB -W 30$/m, /^jsrun -n 2 -r 1 -a 1 -c 42 /m] },
  'gridengine.ts': { label: 'gridengine', lines: [/^#\$ -pe smp 2$/m, /^#\$ -q all\.q$/m, /^#\$ -l h_rt=00:10:00$/m] },
  'slurm-mpi.ts': { label: 'slurm', lines: [/^#SBATCH --nodes=3$/m, /^funcx-manager --block-id 0$/m] },
  'local.ts': { label: 'local', lines: [/^#!\/bin\/bash$/m, /funcx-manager --block-id 0/] },
  'templates/default.ts': { label: 'local', lines: [/^#!\/bin\/bash$/m, /funcx-manager --block-id 0/] },
  'templates/default.yaml': { label: 'local', lines: [/^#!\/bin\/bash$/m, /funcx-manager --block-id 0/] },
};

const saved = { ...process.env };
let tmp = '';

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'funcx-examples-'));
  // Local channels put scripts under FUNCX_HOME; no real site folder may change what renders.
  process.env.FUNCX_HOME = join(tmp, 'home');
  process.env.FUNCX_SITE_TEMPLATES = join(tmp, 'no-site-templates');
  process.env.FUNCX_TEST_SSH_KEY = join(tmp, 'client_ed25519');
  process.env.FUNCX_TEST_SSH_KNOWN_HOSTS = join(tmp, 'known_hosts');
});

after(() => {
  for (const key of ['FUNCX_HOME', 'FUNCX_SITE_TEMPLATES', 'FUNCX_TEST_SSH_KEY', 'FUNCX_TEST_SSH_KNOWN_HOSTS']) {
    if (saved[key] === undefined) delete process.env[key];
    else process.env[key] = saved[key];
  }
  rmSync(tmp, { recursive: true, force: true });
});

async function loadAndRender(file: string): Promise<{ config: Config; script: string }> {
  const config = await loadConfigFile(file);
  try {
    return { config, script: await config.provider.render(requestFor(config.provider, request)) };
  } finally {
    await config.provider.close();
  }
}

describe('examples/', () => {
  for (const [name, expected] of Object.entries(EXPECTED)) {
    test(`${name} loads and renders a ${expected.label} script`, async () => {
      const { config, script } = await loadAndRender(join(EXAMPLES, name));
      assert.equal(config.provider.label, expected.label);
      for (const line of expected.lines) assert.match(script, line);
      assert.match(script, /^export FUNCX_RESULT_SIZE_LIMIT=1024$/m);
    });
  }

  test('slurm-local.ts is the test cluster profile: 2 nodes per block, at most 2 blocks, loopback address', async () => {
    const config = await loadConfigFile(join(EXAMPLES, 'slurm-local.ts'));
    assert.deepEqual(config.strategy.nodes, { min: 2, max: 2 });
    assert.equal(config.strategy.maxBlocks, 2);
    assert.deepEqual(config.strategy.walltimeS, { min: 600, max: 600 });
    assert.equal(config.provider.launcher.name, 'srun');
    assert.equal(config.engine.address, '127.0.0.1');
  });

  test('slurm-ssh.ts reaches 127.0.0.1:2222 as root with the key and known_hosts from the environment', async () => {
    const config = await loadConfigFile(join(EXAMPLES, 'slurm-ssh.ts'));
    const channel = config.provider.channel as unknown as { kind: string; hostname: string; port: number; username: string };
    assert.deepEqual([channel.kind, channel.hostname, channel.port, channel.username], ['ssh', '127.0.0.1', 2222, 'root']);
    assert.equal(config.provider.channel.isRemote, true);
  });

  test('slurm-ssh.ts without FUNCX_TEST_SSH_KEY fails naming the variable', async () => {
    // A copy at another path: the loader caches modules by URL, and this one must run again without the variable.
    const copy = join(tmp, 'ssh-profile', 'config.ts');
    mkdirSync(join(tmp, 'ssh-profile'), { recursive: true });
    copyFileSync(join(EXAMPLES, 'slurm-ssh.ts'), copy);
    delete process.env.FUNCX_TEST_SSH_KEY;
    try {
      await assert.rejects(loadConfigFile(copy), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'CONFIG');
        assert.match(err.message, /FUNCX_TEST_SSH_KEY is not set/);
        assert.ok(err.message.includes(copy), err.message);
        return true;
      });
    } finally {
      process.env.FUNCX_TEST_SSH_KEY = join(tmp, 'client_ed25519');
    }
  });
});

describe('examples/site-templates/', () => {
  test("campus-slurm.ts renders with the site's slurm.sh.hbs: default QoS, exclusive, module load nodejs", async () => {
    process.env.FUNCX_SITE_TEMPLATES = join(EXAMPLES, 'site-templates', 'job-templates');
    try {
      const config = await loadConfigFile(join(EXAMPLES, 'site-templates', 'profiles', 'campus-slurm.ts'));
      const found = (config.provider as unknown as { findTemplate(): { path: string; origin: string } }).findTemplate();
      assert.deepEqual(found, { path: join(EXAMPLES, 'site-templates', 'job-templates', 'slurm.sh.hbs'), origin: 'site' });
      const script = await config.provider.render(requestFor(config.provider, request));
      assert.match(script, /^#SBATCH --qos=normal$/m);
      assert.match(script, /^#SBATCH --exclusive$/m);
      assert.match(script, /^#SBATCH --partition=debug$/m);
      assert.match(script, /module load nodejs/);
      assert.match(script, /^srun .*funcx-manager/m);
    } finally {
      process.env.FUNCX_SITE_TEMPLATES = join(tmp, 'no-site-templates');
    }
  });

  test('the site template fills in its QoS default only when the profile names none', async () => {
    process.env.FUNCX_SITE_TEMPLATES = join(EXAMPLES, 'site-templates', 'job-templates');
    try {
      // slurm-local names no qos: the site's default appears; with the built-in template it would not.
      const { script } = await loadAndRender(join(EXAMPLES, 'slurm-local.ts'));
      assert.match(script, /^#SBATCH --qos=normal$/m);
    } finally {
      process.env.FUNCX_SITE_TEMPLATES = join(tmp, 'no-site-templates');
    }
    const { script } = await loadAndRender(join(EXAMPLES, 'slurm-local.ts'));
    assert.doesNotMatch(script, /--qos/);
  });
});
