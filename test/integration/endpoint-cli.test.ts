/**
 * The `funcx-endpoint` CLI as a user drives it: the real program (`node dist/src/cli/endpoint.js`) in a
 * temporary FUNCX_HOME, with stdin not a terminal. Covers configure, list (the seed's exact table and its
 * three states, from real endpoint.json and lease files), render, doctor, delete, broken profiles, and init
 * against a real funcX service (in this process, on a free loopback port).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startService, type RunningService } from '../../src/service/api.js';
import { silentLogger } from '../../src/logger.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(ROOT, 'dist', 'src', 'cli', 'endpoint.js');
const EXAMPLES = join(ROOT, 'examples');
const ID_DEFAULT = '1e999502-b434-49a2-a2e0-d925383d2dd4';
const ID_KNL = '8c01d13c-cfc1-42d9-96d2-52c51784ea16';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let tmp = '';

/** A fresh FUNCX_HOME path (not created). */
function newHome(): string {
  return mkdtempSync(join(tmp, 'home-'));
}

/** Run the CLI; stdin is a pipe (no terminal), as in scripts and CI. */
function cli(home: string, args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('FUNCX_')) childEnv[k] = v;
  Object.assign(childEnv, { FUNCX_HOME: home, FUNCX_SITE_TEMPLATES: join(tmp, 'no-site-templates') });
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject).on('close', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })));
  });
}

function writeProfile(home: string, name: string, text: string, file = 'config.ts'): string {
  mkdirSync(join(home, name), { recursive: true });
  writeFileSync(join(home, name, file), text);
  return join(home, name, file);
}

function writeLeaseFile(home: string, name: string, lease: { pid: number; host: string; refreshedAgoMs: number }): void {
  const at = new Date(Date.now() - lease.refreshedAgoMs).toISOString();
  writeFileSync(join(home, name, 'daemon.pid'), JSON.stringify({ pid: lease.pid, host: lease.host, startedAt: at, refreshedAt: at, port: 0 }));
}

/** A loopback port nothing listens on (bound by us, then closed). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'funcx-endpoint-cli-'));
  assert.ok(existsSync(CLI), `${CLI} is missing: build first (npx tsc -p tsconfig.json)`);
});

after(() => rmSync(tmp, { recursive: true, force: true }));

describe('funcx-endpoint help and version', () => {
  test('--version prints the package version; --help lists every command', async () => {
    const home = newHome();
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    const v = await cli(home, ['--version']);
    assert.equal(v.code, 0);
    assert.equal(v.stdout.trim(), version);
    const h = await cli(home, ['--help']);
    assert.equal(h.code, 0);
    for (const command of ['init', 'configure', 'start', 'stop', 'restart', 'list', 'status', 'delete', 'render', 'doctor']) {
      assert.match(h.stdout, new RegExp(`^  ${command}\\b`, 'm'), `--help lacks ${command}`);
    }
    const bad = await cli(home, ['no-such-command']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /unknown command 'no-such-command'/);
  });
});

describe('configure', () => {
  test('creates NAME/config.ts from the default template, and config.yaml with --yaml', async () => {
    const home = newHome();
    const r = await cli(home, ['configure']);
    assert.equal(r.code, 0, r.stderr);
    const file = join(home, 'default', 'config.ts');
    assert.equal(readFileSync(file, 'utf8'), readFileSync(join(EXAMPLES, 'templates', 'default.ts'), 'utf8'));
    assert.ok(r.stdout.includes(file), r.stdout);
    assert.match(r.stdout, /funcx-endpoint start default/);
    assert.equal(JSON.parse(readFileSync(join(home, 'package.json'), 'utf8')).type, 'module');

    const y = await cli(home, ['configure', 'gpu_cluster', '--yaml']);
    assert.equal(y.code, 0, y.stderr);
    assert.equal(readFileSync(join(home, 'gpu_cluster', 'config.yaml'), 'utf8'), readFileSync(join(EXAMPLES, 'templates', 'default.yaml'), 'utf8'));
    assert.equal(existsSync(join(home, 'gpu_cluster', 'config.ts')), false);
  });

  test('refuses to overwrite an existing profile', async () => {
    const home = newHome();
    assert.equal((await cli(home, ['configure', 'ep1'])).code, 0);
    const file = writeProfile(home, 'ep1', '// my edits\n');
    const again = await cli(home, ['configure', 'ep1']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^Error: endpoint ep1 is already configured: /m);
    assert.ok(again.stderr.includes(file));
    assert.equal(readFileSync(file, 'utf8'), '// my edits\n');
    const yaml = await cli(home, ['configure', 'ep1', '--yaml']);
    assert.equal(yaml.code, 1);
    assert.equal(existsSync(join(home, 'ep1', 'config.yaml')), false);
  });

  test("--template copies the site's profile template; an unknown one lists those available", async () => {
    const home = newHome();
    const site = { FUNCX_SITE_TEMPLATES: join(EXAMPLES, 'site-templates', 'job-templates') };
    const r = await cli(home, ['configure', 'campus', '--template', 'campus-slurm'], site);
    assert.equal(r.code, 0, r.stderr);
    const copied = readFileSync(join(home, 'campus', 'config.ts'), 'utf8');
    assert.equal(copied, readFileSync(join(EXAMPLES, 'site-templates', 'profiles', 'campus-slurm.ts'), 'utf8'));
    const missing = await cli(home, ['configure', 'other', '--template', 'no-such-site'], site);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no such site profile template/);
    assert.match(missing.stderr, /available: campus-slurm/);
    assert.equal(existsSync(join(home, 'other')), false);
    // The copied profile renders with the site's job template (found through FUNCX_SITE_TEMPLATES).
    const rendered = await cli(home, ['render', 'campus'], site);
    assert.equal(rendered.code, 0, rendered.stderr);
    assert.match(rendered.stdout, /^#SBATCH --qos=normal$/m);
  });

  test('refuses names that are not folder names', async () => {
    const r = await cli(newHome(), ['configure', '../evil']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: endpoint name "\.\.\/evil"/m);
  });
});

describe('list', () => {
  test('shows configured endpoints as Initialized with id None, in the seed format, and as JSON', async () => {
    const home = newHome();
    assert.equal((await cli(home, ['configure'])).code, 0);
    assert.equal((await cli(home, ['configure', 'gpu_cluster', '--yaml'])).code, 0);
    const r = await cli(home, ['list']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        '+---------------+-------------+-------------+',
        '| Endpoint Name |   Status    | Endpoint ID |',
        '+===============+=============+=============+',
        '| default       | Initialized | None        |',
        '+---------------+-------------+-------------+',
        '| gpu_cluster   | Initialized | None        |',
        '+---------------+-------------+-------------+',
        '',
      ].join('\n'),
    );
    const j = await cli(home, ['list', '--json']);
    assert.equal(j.code, 0);
    assert.deepEqual(JSON.parse(j.stdout), [
      { name: 'default', status: 'Initialized', id: null, username: null, email: null },
      { name: 'gpu_cluster', status: 'Initialized', id: null, username: null, email: null },
    ]);
  });

  test("prints the seed's own table: Active (live lease), Inactive (registered), Initialized", async () => {
    const home = newHome();
    for (const name of ['default', 'KNL_test', 'gpu_cluster']) assert.equal((await cli(home, ['configure', name])).code, 0);
    writeFileSync(join(home, 'default', 'endpoint.json'), JSON.stringify({ id: ID_DEFAULT, name: 'default' }));
    writeFileSync(join(home, 'KNL_test', 'endpoint.json'), JSON.stringify({ id: ID_KNL, name: 'KNL_test' }));
    // This test process stands in for the daemon: a live pid on this host, refreshed just now.
    writeLeaseFile(home, 'default', { pid: process.pid, host: hostname(), refreshedAgoMs: 0 });
    const r = await cli(home, ['list']);
    assert.equal(r.code, 0, r.stderr);
    // The seed lists default, KNL_test, gpu_cluster; we sort by name (uppercase first). The rows are the seed's.
    const rule = '+---------------+-------------+--------------------------------------+';
    const expected = [
      rule, '| Endpoint Name |   Status    |             Endpoint ID              |', '+===============+=============+======================================+',
      '| KNL_test      | Inactive    | 8c01d13c-cfc1-42d9-96d2-52c51784ea16 |', rule,
      '| default       | Active      | 1e999502-b434-49a2-a2e0-d925383d2dd4 |', rule,
      '| gpu_cluster   | Initialized | None                                 |', rule, '',
    ].join('\n');
    assert.equal(r.stdout, expected);
  });

  test('a stale lease, a dead pid, or another host: the lease decides Active vs Inactive', async () => {
    const home = newHome();
    assert.equal((await cli(home, ['configure'])).code, 0);
    writeFileSync(join(home, 'default', 'endpoint.json'), JSON.stringify({ id: ID_DEFAULT, name: 'default' }));
    const status = async (): Promise<string> => (JSON.parse((await cli(home, ['list', '--json'])).stdout) as Array<{ status: string }>)[0]!.status;
    // Not refreshed for 20 s (the daemon refreshes every 5 s): a crash or a reboot left it.
    writeLeaseFile(home, 'default', { pid: process.pid, host: hostname(), refreshedAgoMs: 20_000 });
    assert.equal(await status(), 'Inactive');
    // Fresh, but its process is gone (a pid that cannot exist).
    writeLeaseFile(home, 'default', { pid: 2 ** 22 + 12345, host: hostname(), refreshedAgoMs: 0 });
    assert.equal(await status(), 'Inactive');
    // Fresh and held by another login node sharing the home: we cannot see its process, freshness decides.
    writeLeaseFile(home, 'default', { pid: 2 ** 22 + 12345, host: 'other-login-node', refreshedAgoMs: 1000 });
    assert.equal(await status(), 'Active');
    // Not a lease at all.
    writeFileSync(join(home, 'default', 'daemon.pid'), '12345\n');
    assert.equal(await status(), 'Inactive');
  });
});

describe('broken profiles', () => {
  const cases: Array<[string, string, string, RegExp]> = [
    ['syntax error', 'config.ts', "import { Config } from 'funcx-endpoint';\nexport default new Config({ engine: { ,, } });\n", /cannot load the profile/],
    ['unknown field', 'config.ts', "import { Config } from 'funcx-endpoint';\nexport default new Config({ bogus_field: 1 } as never);\n", /bogus_field is not a known field/],
    ['wrong type', 'config.ts', "import { Config } from 'funcx-endpoint';\nexport default new Config({ engine: { heartbeat_period: 'ten' as never } });\n", /engine\.heartbeat_period must be a number > 0 \(got "ten"\)/],
    ['max_blocks: 0 (before any registration)', 'config.ts', "import { Config, SlurmProvider } from 'funcx-endpoint';\nexport default new Config({ provider: new SlurmProvider({ max_blocks: 0 }) });\n", /provider\.max_blocks must be a whole number ≥ 1 \(got 0\)/],
    ['wrong type in YAML', 'config.yaml', 'provider:\n  type: slurm\n  nodes_per_block: two\n', /provider\.nodes_per_block/],
    ['unknown provider option', 'config.ts', "import { Config, SlurmProvider } from 'funcx-endpoint';\nexport default new Config({ provider: new SlurmProvider({ partiton: 'debug' } as never) });\n", /provider\.partiton: unknown option/],
  ];
  for (const [what, file, text, field] of cases) {
    test(`${what}: exit 1 with one message naming the file and the field`, async () => {
      const home = newHome();
      const path = writeProfile(home, 'broken', text, file);
      const r = await cli(home, ['render', 'broken']);
      assert.equal(r.code, 1, r.stdout);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^Error: /);
      assert.ok(r.stderr.includes(path), `the message names ${path}: ${r.stderr}`);
      assert.match(r.stderr, field);
      const d = await cli(home, ['doctor', 'broken']);
      assert.equal(d.code, 1);
      assert.match(d.stdout, /^✗ profile loads: /m);
    });
  }
});

describe('render', () => {
  test('prints the default profile block script; nothing is submitted, no keys are kept', async () => {
    const home = newHome();
    assert.equal((await cli(home, ['configure'])).code, 0);
    const r = await cli(home, ['render']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^#!\/bin\/bash\n/);
    assert.match(r.stdout, /cli\/manager\.js --addresses 127\.0\.0\.1 .*--block-id 0 .*--max-workers 2/);
    assert.equal(existsSync(join(home, 'default', 'keys')), false);
    assert.equal(existsSync(join(home, 'submit_scripts')), false);
  });

  test('prints the Slurm script of examples/slurm-local.ts copied into a profile', async () => {
    const home = newHome();
    mkdirSync(join(home, 'cluster'), { recursive: true });
    copyFileSync(join(EXAMPLES, 'slurm-local.ts'), join(home, 'cluster', 'config.ts'));
    const r = await cli(home, ['render', 'cluster']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], '#!/bin/bash');
    for (const line of ['#SBATCH --job-name=funcx-cluster-0', '#SBATCH --nodes=2', '#SBATCH --ntasks-per-node=1', '#SBATCH --time=00:10:00', '#SBATCH --partition=debug']) {
      assert.ok(lines.includes(line), `missing ${line} in:\n${r.stdout}`);
    }
    assert.match(r.stdout, /^srun --ntasks=2 --ntasks-per-node=1 --nodes=2 .*manager\.js/m);
    assert.equal(existsSync(join(home, 'submit_scripts')), false, 'a dry run writes no script');
  });

  test('an endpoint that is not configured: exit 1 naming the known ones', async () => {
    const home = newHome();
    assert.equal((await cli(home, ['configure', 'one'])).code, 0);
    const r = await cli(home, ['render', 'two']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: no endpoint named two/m);
    assert.match(r.stderr, /endpoints: one/);
  });
});

describe('doctor', () => {
  test('passes for the default profile and flags a key file others can read', async () => {
    const home = newHome();
    assert.equal((await cli(home, ['configure'])).code, 0);
    const r = await cli(home, ['doctor']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const check of ['global options', 'profile loads', 'scheduler commands', 'endpoint address', 'job template', 'script renders', 'keys']) {
      assert.match(r.stdout, new RegExp(`^✓ ${check}: `, 'm'), `${check} in:\n${r.stdout}`);
    }
    assert.doesNotMatch(r.stdout, /^✗/m);
    mkdirSync(join(home, 'default', 'keys'), { mode: 0o700 });
    writeFileSync(join(home, 'default', 'keys', 'endpoint.json'), '{}', { mode: 0o644 });
    const bad = await cli(home, ['doctor']);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /^✗ keys: endpoint\.json is 0644, expected 0600/m);
    assert.match(bad.stderr, /^Error: 1 of \d+ checks failed for endpoint default/m);
  });
});

describe('delete', () => {
  test('refuses without --yes when there is no terminal, works with --yes', async () => {
    const home = newHome();
    assert.equal((await cli(home, ['configure', 'old'])).code, 0);
    const r = await cli(home, ['delete', 'old']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /without confirmation/);
    assert.match(r.stderr, /--yes/);
    assert.ok(existsSync(join(home, 'old', 'config.ts')));
    const y = await cli(home, ['delete', 'old', '--yes']);
    assert.equal(y.code, 0, y.stderr);
    assert.equal(existsSync(join(home, 'old')), false);
    assert.deepEqual(JSON.parse((await cli(home, ['list', '--json'])).stdout), []);
    const again = await cli(home, ['delete', 'old', '--yes']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no endpoint named old/);
  });

  test('refuses while the endpoint holds a live lease, naming the host', async () => {
    const home = newHome();
    assert.equal((await cli(home, ['configure', 'busy'])).code, 0);
    writeLeaseFile(home, 'busy', { pid: 4242, host: 'login2', refreshedAgoMs: 0 });
    const r = await cli(home, ['delete', 'busy', '--yes']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /endpoint busy is running \(pid 4242 on host login2\)/);
    assert.ok(existsSync(join(home, 'busy', 'config.ts')));
  });
});

describe('init (against a real funcX service)', () => {
  let service: RunningService;
  let token = '';

  before(async () => {
    service = await startService({ home: join(tmp, 'service'), host: '127.0.0.1', port: 0, log: silentLogger });
    token = (await service.store.createUser('alice')).token;
  });

  after(async () => {
    await service?.close();
  });

  test('a good token: credentials (0600), global config.ts and the default profile', async () => {
    const home = join(newHome(), 'fresh');
    const r = await cli(home, ['init', '--service', service.url], { FUNCX_TOKEN: token });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /as alice/);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(token), 'the token is never printed');
    const credentials = join(home, 'credentials.json');
    assert.equal(statSync(credentials).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(readFileSync(credentials, 'utf8')), { serviceUrl: service.url, token });
    const global = readFileSync(join(home, 'config.ts'), 'utf8');
    assert.match(global, /service_url: "http:\/\/127\.0\.0\.1:\d+"/);
    assert.match(global, /username: "alice"/);
    assert.match(global, /endpoint_address: addressByHostname\(\)/);
    assert.ok(existsSync(join(home, 'default', 'config.ts')));
    // The written global options load (through tsx, importing 'funcx-endpoint'), and the home passes doctor.
    const d = await cli(home, ['doctor']);
    assert.equal(d.code, 0, d.stdout + d.stderr);
    assert.ok(d.stdout.includes(`✓ global options: ${join(home, 'config.ts')}`), d.stdout);
    assert.match(d.stdout, /^✓ credentials: .* is 0600$/m);
    // Running init again keeps the user's global options and profile.
    writeFileSync(join(home, 'config.ts'), global.replace('email: ""', 'email: "alice@example.org"'));
    const again = await cli(home, ['init'], { FUNCX_TOKEN: token });
    assert.equal(again.code, 0, again.stderr);
    assert.match(readFileSync(join(home, 'config.ts'), 'utf8'), /alice@example\.org/);
  });

  test('a wrong token: exit 1, the service refused it, nothing written', async () => {
    const home = join(newHome(), 'h');
    const r = await cli(home, ['init', '--service', service.url], { FUNCX_TOKEN: 'not-a-real-token' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: the funcX service at http:\/\/127\.0\.0\.1:\d+ refused the token/m);
    assert.equal(existsSync(join(home, 'credentials.json')), false);
  });

  test('the service is down: exit 3 with a clear message', async () => {
    const home = join(newHome(), 'h');
    const port = await closedPort();
    const r = await cli(home, ['init'], { FUNCX_TOKEN: token, FUNCX_SERVICE_URL: `http://127.0.0.1:${port}` });
    assert.equal(r.code, 3, r.stderr);
    assert.ok(r.stderr.startsWith(`Error: cannot reach the funcX service at http://127.0.0.1:${port}: connection refused`), r.stderr);
    assert.equal(existsSync(join(home, 'credentials.json')), false);
  });

  test('no FUNCX_TOKEN and no terminal: exit 1 saying how to give a token', async () => {
    const r = await cli(join(newHome(), 'h'), ['init', '--service', service.url]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /FUNCX_TOKEN is not set and there is no terminal/);
  });
});
