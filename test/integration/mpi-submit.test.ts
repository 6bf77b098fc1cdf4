/**
 * Resource specifications at submit: the real service checks them (errors name the task and field) and
 * stores them in the task; the SDK and `funcx run` / `funcx shell` carry them (flag errors name the flag).
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startService, type RunningService } from '../../src/service/api.js';
import type { SqliteStore } from '../../src/service/store/sqlite.js';
import { FuncXClient } from '../../src/sdk/client.js';
import { MPIFunction, ShellFunction, withResources } from '../../src/sdk/functions.js';
import { decodeTask } from '../../src/protocol/payload.js';
import { silentLogger } from '../../src/logger.js';
import Database from 'better-sqlite3';
import { FakeEndpoint, removeFakeEndpointDirs } from '../helpers/fake-endpoint.js';

const dirs: string[] = [];
const tmp = (p: string) => dirs[dirs.push(mkdtempSync(join(tmpdir(), `funcx-${p}-`))) - 1];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  removeFakeEndpointDirs();
});
const CLI = (name: string) => fileURLToPath(new URL(`../../src/cli/${name}.js`, import.meta.url));

function run(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI('funcx'), ...args], { env: { ...process.env, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function setup(t: TestContext): Promise<{ s: RunningService; token: string; sdk: FuncXClient; ep: FakeEndpoint }> {
  const s = await startService({ home: tmp('service'), port: 0, heartbeatPeriodMs: 100, heartbeatThresholdMs: 1500, log: silentLogger });
  t.after(() => s.close());
  const { token } = await s.store.createUser('alice');
  const ep = await FakeEndpoint.start(s.url, token, { name: 'mpi' });
  t.after(() => ep.close());
  return { s, token, sdk: new FuncXClient({ serviceUrl: s.url, token }), ep };
}

/** The task bodies as the service stored them (read from its SQLite file), oldest first. */
function storedBodies(s: RunningService): Map<string, ReturnType<typeof decodeTask>> {
  const db = new Database((s.store as SqliteStore).path, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT t.id AS id, p.payload AS payload FROM tasks t JOIN task_payloads p ON p.seq = t.seq ORDER BY t.seq').all() as Array<{ id: string; payload: Buffer }>;
    return new Map(rows.map((r) => [r.id, decodeTask(r.payload)]));
  } finally {
    db.close();
  }
}
const storedResources = (s: RunningService, id: string) => storedBodies(s).get(id)?.resources;

test('the service checks resource specifications, naming the task and field, and stores them in the task', async (t) => {
  const { s, token, sdk, ep } = await setup(t);
  const post = async (tasks: unknown[]) => {
    const r = await fetch(`${s.url}/v1/tasks`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ tasks }) });
    return { status: r.status, body: (await r.json()) as { message?: string } };
  };
  const ok = { endpointId: ep.id, shell: { command: 'true' } };
  let r = await post([ok, { ...ok, resources: { num_nodes: 0 } }]);
  assert.equal(r.status, 400);
  assert.match(r.body.message!, /^tasks\[1\]\.resources\.num_nodes: must be a whole number from 1/);
  r = await post([{ ...ok, resources: { nodes: 2 } }]);
  assert.match(r.body.message!, /^tasks\[0\]\.resources\.nodes: unknown field/);
  r = await post([{ endpointId: ep.id, mpi: { command: './app' }, resources: { num_nodes: 2, ranks_per_node: 1, num_ranks: 5 } }]);
  assert.match(r.body.message!, /^tasks\[0\]\.resources\.num_ranks: 5 ranks do not fit/);

  const [mpiId, shId] = await sdk.batchRun(
    sdk.createBatch()
      .add(ep.id, MPIFunction('./app --x', { resources: { num_nodes: 2, ranks_per_node: 4 } }))
      .add(ep.id, withResources(ShellFunction('echo {x}'), { num_nodes: 3 }), { x: 'hi' }),
  );
  assert.deepEqual(storedResources(s, mpiId), { num_nodes: 2, ranks_per_node: 4, num_ranks: 8 });
  assert.equal((storedBodies(s).get(mpiId) as { ranks: number }).ranks, 8);
  assert.deepEqual(storedResources(s, shId), { num_nodes: 3, ranks_per_node: 1, num_ranks: 3 });
  // The older form, ranks only, still submits (one node).
  const old = await sdk.run(ep.id, MPIFunction('./app', { ranks: 2 }));
  assert.deepEqual(storedResources(s, old), { num_nodes: 1, ranks_per_node: 2, num_ranks: 2 });
});

test('funcx run / shell take --nodes, --ranks-per-node, --ranks; a bad value names the flag', async (t) => {
  const { s, token, ep } = await setup(t);
  const home = tmp('funcx-home');
  writeFileSync(join(home, 'credentials.json'), JSON.stringify({ serviceUrl: s.url, token }), { mode: 0o600 });
  const env = { FUNCX_HOME: home, FUNCX_TOKEN: token, FUNCX_SERVICE_URL: s.url };
  const dir = tmp('funcs');
  writeFileSync(join(dir, 'add.mjs'), 'export default function add(a, b) { return a + b; }\n');
  const reg = await run(['register-function', join(dir, 'add.mjs'), '--name', 'add'], env);
  assert.equal(reg.code, 0, reg.stderr);
  const fnId = reg.stdout.trim();
  const ran = await run(['run', '--endpoint', ep.id, '--function', fnId, '--args', '[2, 3]', '--nodes', '2', '--ranks-per-node', '2'], env);
  assert.deepEqual([ran.code, ran.stdout], [0, '5\n'], ran.stderr);
  const sh = await run(['shell', '--endpoint', ep.id, '--nodes', '1', '--ranks', '3', '--', 'echo hi'], env);
  assert.deepEqual([sh.code, sh.stdout], [0, 'hi\n'], sh.stderr);
  const bodies = [...storedBodies(s).values()];
  assert.equal(bodies.length, 2);
  assert.deepEqual([bodies[0].kind, bodies[0].resources], ['js', { num_nodes: 2, ranks_per_node: 2, num_ranks: 4 }]);
  assert.deepEqual([bodies[1].kind, bodies[1].resources], ['shell', { num_nodes: 1, ranks_per_node: 3, num_ranks: 3 }]);
  const bad = await run(['shell', '--endpoint', ep.id, '--nodes', 'two', '--', 'true'], env);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^Error: --nodes: resources\.num_nodes: must be a whole number from 1 to \d+, got "two"/);
  const bad2 = await run(['run', '--endpoint', ep.id, '--function', fnId, '--nodes', '1', '--ranks', '0'], env);
  assert.match(bad2.stderr, /^Error: --ranks: resources\.num_ranks/);
});
