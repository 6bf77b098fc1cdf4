/**
 * The endpoint's life through the real CLI and a real service: start (running init first), a second start
 * refused, status, list states, one-call stop, stale and foreign leases, restart, service down at start,
 * owner-only start, a broken profile that starts nothing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startService, type RunningService } from '../../src/service/api.js';
import { silentLogger } from '../../src/logger.js';
import { processExists } from '../../src/endpoint/daemon/lease.js';
import { until, untilValue } from '../helpers/wait.js';

const CLI = fileURLToPath(new URL('../../src/cli/endpoint.js', import.meta.url));
let tmp = '';
let service: RunningService;
let tokenA = '';
let tokenB = '';

interface Run { code: number | null; stdout: string; stderr: string }

function cli(home: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('FUNCX_')) childEnv[k] = v;
  Object.assign(childEnv, { FUNCX_HOME: home, FUNCX_SERVICE_URL: service.url, FUNCX_TOKEN: tokenA }, env);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject).on('close', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })));
  });
}

const LOCAL_PROFILE = `import { Config, LocalProvider } from 'funcx-endpoint';
export default new Config({
  engine: { address: '127.0.0.1', max_workers_per_node: 1, heartbeat_period: 1, heartbeat_threshold: 5 },
  provider: new LocalProvider({ init_blocks: 1, min_blocks: 1, max_blocks: 1 }),
  strategy: { period: 1 },
});
`;

/** Alive and not a zombie (this container's init does not reap). */
const alive = processExists;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'funcx-lifecycle-'));
  service = await startService({ home: join(tmp, 'service'), port: 0, log: silentLogger });
  tokenA = (await service.store.createUser('alice')).token;
  tokenB = (await service.store.createUser('bob')).token;
});
after(async () => {
  await service.close();
});

test('start runs init, is Active, refuses a second start, shows status, stops in one call', async () => {
  const home = join(tmp, 'home-a');
  const started = await cli(home, ['start']);
  assert.equal(started.code, 0, started.stderr);
  assert.match(started.stdout, /Endpoint default is Active: id [0-9a-f-]{36}/);
  const lease = JSON.parse(readFileSync(join(home, 'default', 'daemon.pid'), 'utf8')) as { pid: number; host: string };
  assert.ok(alive(lease.pid));

  const again = await cli(home, ['start']);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /already running/);

  // Give the daemon a block (init_blocks 1 in this profile) and a status refresh.
  writeFileSync(join(home, 'default', 'config.ts'), LOCAL_PROFILE);
  const restarted = await cli(home, ['restart']);
  assert.equal(restarted.code, 0, restarted.stderr);
  const newLease = JSON.parse(readFileSync(join(home, 'default', 'daemon.pid'), 'utf8')) as { pid: number };
  assert.notEqual(newLease.pid, lease.pid);
  assert.ok(!alive(lease.pid), 'the old daemon is gone after restart');
  const status = await untilValue(
    'a block with a manager in status --json',
    async () => JSON.parse((await cli(home, ['status', '--json'])).stdout) as { status: string; blocks: Array<{ state: string; managers: number }>; queue_wait: Array<{ nodes: number; samples: number }> },
    { ok: (st) => st.blocks.some((b) => b.managers > 0), everyMs: 250 },
  );
  assert.equal(status.status, 'Active');
  assert.ok(status.blocks.some((b) => b.state === 'running' && b.managers === 1), JSON.stringify(status.blocks));
  assert.deepEqual(status.queue_wait.map((w) => [w.nodes, w.samples]), [[1, 1]], 'the block\'s queue wait is in the estimate');
  // The manager's heartbeat brings its worker pools: the owner's one warm process (max_workers_per_node 1).
  const pools = await untilValue(
    "the manager's pools in status --json",
    async () => (JSON.parse((await cli(home, ['status', '--json'])).stdout) as { managers: Array<{ pools: Array<{ user: string; running: number; idle: number; queued: number }> }> }).managers[0]?.pools,
    { ok: (p) => p !== undefined && p.length > 0, everyMs: 250 },
  );
  assert.deepEqual(pools, [{ user: '', running: 0, idle: 1, queued: 0 }]);
  const table = await cli(home, ['status']);
  assert.match(table.stdout, /Worker pools\n.*Manager.*User.*Running.*Idle warm.*Queued\n.*\(owner\)\s+0\s+1\s+0/);
  assert.match(table.stdout, /Blocks\n.*Block.*Job ID.*State.*Nodes/);
  assert.match(table.stdout, /Queue wait \(estimate per block shape, submitted → running\)\n.*Shape.*Estimate.*Starts seen/);

  const list = JSON.parse((await cli(home, ['list', '--json'])).stdout) as Array<{ name: string; status: string; id: string }>;
  assert.deepEqual(list.map((e) => [e.name, e.status]), [['default', 'Active']]);

  const stopped = await cli(home, ['stop']);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.match(stopped.stdout, /Endpoint default stopped/);
  assert.ok(!alive(newLease.pid), 'one stop: the daemon is gone');
  assert.ok(!existsSync(join(home, 'default', 'daemon.pid')));
  const after = JSON.parse((await cli(home, ['list', '--json'])).stdout) as Array<{ status: string }>;
  assert.equal(after[0].status, 'Inactive');
  const twice = await cli(home, ['stop']);
  assert.equal(twice.code, 0);
  assert.match(twice.stdout, /not running/);
});

test('a stale lease (crash, reboot) does not block start; a fresh one from another host does, naming it', async () => {
  const home = join(tmp, 'home-b');
  assert.equal((await cli(home, ['start'])).code, 0);
  const { pid } = JSON.parse(readFileSync(join(home, 'default', 'daemon.pid'), 'utf8')) as { pid: number };
  process.kill(pid, 'SIGKILL');
  await until(`daemon ${pid} to die`, () => !alive(pid));
  const listed = JSON.parse((await cli(home, ['list', '--json'])).stdout) as Array<{ status: string }>;
  assert.equal(listed[0].status, 'Inactive', 'a dead daemon is not Active');
  const started = await cli(home, ['start']);
  assert.equal(started.code, 0, started.stderr);
  assert.equal((await cli(home, ['stop'])).code, 0);

  const now = new Date().toISOString();
  writeFileSync(join(home, 'default', 'daemon.pid'), JSON.stringify({ pid: 4242, host: 'login2.example.org', startedAt: now, refreshedAt: now, port: 0 }));
  const refused = await cli(home, ['start']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /already running.*login2\.example\.org/);
  const stop = await cli(home, ['stop']);
  assert.notEqual(stop.code, 0);
  assert.match(stop.stderr, /login2\.example\.org/);
  rmSync(join(home, 'default', 'daemon.pid'));
});

test('service down at start: a clear message naming the URL, non-zero exit, nothing left running', async () => {
  const home = join(tmp, 'home-c');
  const r = await cli(home, ['start'], { FUNCX_SERVICE_URL: 'http://127.0.0.1:9' });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /127\.0\.0\.1:9/);
  assert.ok(!existsSync(join(home, 'default', 'daemon.pid')));
});

test("another user's token cannot start someone else's endpoint (403)", async () => {
  const home = join(tmp, 'home-d');
  assert.equal((await cli(home, ['start'])).code, 0);
  assert.equal((await cli(home, ['stop'])).code, 0);
  const stolen = join(tmp, 'home-d-copy');
  cpSync(home, stolen, { recursive: true });
  rmSync(join(stolen, 'credentials.json'));
  const r = await cli(stolen, ['start'], { FUNCX_TOKEN: tokenB });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /owner|forbidden|not yours|belongs/i);
  assert.ok(!existsSync(join(stolen, 'default', 'daemon.pid')));
});

test('a broken profile: exit 1, the file and field named, nothing started', async () => {
  const home = join(tmp, 'home-e');
  assert.equal((await cli(home, ['configure', 'broken'])).code, 0);
  writeFileSync(join(home, 'broken', 'config.ts'), `import { Config } from 'funcx-endpoint';\nexport default new Config({ engine: { max_workers_per_node: 'four' } as any });\n`);
  const r = await cli(home, ['start', 'broken']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /broken\/config\.ts/);
  assert.match(r.stderr, /engine\.max_workers_per_node/);
  assert.ok(!existsSync(join(home, 'broken', 'daemon.pid')));
});

test('username and email of the global options reach the service as endpoint metadata and show in list --json; broker_* warn', async () => {
  const home = join(tmp, 'home-m');
  mkdirSync(home, { recursive: true });
  writeFileSync(join(home, 'config.ts'), `export default {
  service_url: ${JSON.stringify(service.url)},
  username: 'alice-hpc',
  email: 'alice@example.org',
  broker_address: '10.0.0.1',
  broker_port: 8088,
};
`);
  const started = await cli(home, ['start']);
  assert.equal(started.code, 0, started.stderr);
  assert.match(started.stderr, /broker_address has no effect here/);
  assert.match(started.stderr, /broker_port has no effect here/);
  const [row] = JSON.parse((await cli(home, ['list', '--json'])).stdout) as Array<{ id: string; username: string; email: string }>;
  assert.deepEqual([row!.username, row!.email], ['alice-hpc', 'alice@example.org']);
  const res = await fetch(`${service.url}/v1/endpoints/${row!.id}`, { headers: { authorization: `Bearer ${tokenA}` } });
  assert.equal(res.status, 200);
  const view = (await res.json()) as { metadata: unknown };
  assert.deepEqual(view.metadata, { username: 'alice-hpc', email: 'alice@example.org' });
  assert.equal((await cli(home, ['stop'])).code, 0);
});

test('provider max_blocks: 0 fails at load naming provider.max_blocks, before any registration', async () => {
  const home = join(tmp, 'home-z');
  assert.equal((await cli(home, ['configure', 'zero'])).code, 0);
  writeFileSync(join(home, 'zero', 'config.ts'), `import { Config, LocalProvider } from 'funcx-endpoint';\nexport default new Config({ provider: new LocalProvider({ max_blocks: 0 }) });\n`);
  const r = await cli(home, ['start', 'zero']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /zero\/config\.ts: provider\.max_blocks must be a whole number ≥ 1 \(got 0\)/);
  assert.ok(!existsSync(join(home, 'zero', 'endpoint.json')), 'never registered');
  assert.ok(!existsSync(join(home, 'zero', 'daemon.pid')));
});
