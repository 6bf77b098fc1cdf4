/**
 * A stop at any moment of the daemon's start leaves nothing behind: no job in `squeue`, no daemon, no
 * manager, no lease. The daemon is the real detached one (`startDaemon`, what `funcx-endpoint start` runs),
 * its profile a real Slurm block (`init_blocks: 1`), and it is stopped as `funcx-endpoint stop` does (SIGTERM
 * to the lease's pid) while it is:
 *   - registering (the service holds the registration reply),
 *   - starting its engine, with the first block's `sbatch` under way (a wrapper holds sbatch until the stop
 *     has begun, so the job exists only after the daemon was told to stop: it must still be cancelled),
 *   - connecting to a forwarder that does not answer, its block already queued.
 * A second SIGTERM during the stop does not kill it. Every wait is on a state: a log line, a file, squeue.
 * Also: the daemon's token is not in its environment (/proc/PID/environ).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import * as zmq from 'zeromq';
import { ensureSlurm } from './cluster-setup.js';
import { until, untilValue } from '../helpers/wait.js';
import { FuncxHome } from '../../src/endpoint/daemon/home.js';
import { startDaemon } from '../../src/endpoint/daemon/control.js';
import { processExists, readLease } from '../../src/endpoint/daemon/lease.js';
import { PROTOCOL_VERSION } from '../../src/protocol/forwarder-messages.js';
import { startService, type RunningService } from '../../src/service/api.js';
import { silentLogger } from '../../src/logger.js';

const TOKEN = 'secret-token-' + randomUUID();
let tmp = '';
let fake: Server;
let fakeUrl = '';
/** What the fake service does with the next registration. */
let onRegister: (req: IncomingMessage, res: ServerResponse) => void = () => {};
const registrations: string[] = [];
const held: ServerResponse[] = [];
let service: RunningService;
let realToken = '';
let sbatchDir = '';

const SLURM_PROFILE = `import { Config, SlurmProvider, SrunLauncher, LocalChannel } from 'funcx-endpoint';
export default new Config({
  engine: { address: '127.0.0.1', max_workers_per_node: 1, heartbeat_period: 1, heartbeat_threshold: 5 },
  provider: new SlurmProvider({
    partition: 'debug', nodes_per_block: 1, walltime: '00:05:00',
    init_blocks: 1, min_blocks: 1, max_blocks: 1,
    launcher: new SrunLauncher(),
    channel: new LocalChannel({ script_dir: SCRIPT_DIR }),
  }),
  strategy: { period: 1 },
});
`;

/** A forwarder address where nothing answers (the ports are closed; ZeroMQ keeps trying). */
async function deadForwarder(): Promise<object> {
  const { publicKey } = zmq.curveKeyPair();
  return { host: '127.0.0.1', ports: { tasks: 9, results: 9, commands: 9 }, publicKey };
}

before(async () => {
  await ensureSlurm();
  tmp = mkdtempSync(join(tmpdir(), 'funcx-daemon-stop-'));
  fake = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/v1/endpoints') {
      req.resume();
      registrations.push(req.headers.authorization ?? '');
      onRegister(req, res);
    } else {
      res.writeHead(404).end('{}');
    }
  });
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
  fakeUrl = `http://127.0.0.1:${(fake.address() as { port: number }).port}`;
  service = await startService({ home: join(tmp, 'service'), port: 0, log: silentLogger });
  realToken = (await service.store.createUser('dana')).token;

  // sbatch that says it was called, waits until released, then submits for real.
  sbatchDir = join(tmp, 'sbatch-bin');
  mkdirSync(sbatchDir);
  const realSbatch = execFileSync('bash', ['-c', 'command -v sbatch'], { encoding: 'utf8' }).trim();
  writeFileSync(join(sbatchDir, 'sbatch'), `#!/bin/bash
touch "$FUNCX_TEST_SBATCH_DIR/called"
while [ ! -e "$FUNCX_TEST_SBATCH_DIR/release" ]; do sleep 0.05; done
exec ${realSbatch} "$@"
`);
  chmodSync(join(sbatchDir, 'sbatch'), 0o755);
});

after(async () => {
  for (const res of held) res.destroy();
  fake.close();
  await service.close();
});

/** A profile `name` in a fresh home, its jobs named funcx-<name>-*. */
function makeHome(name: string): { home: FuncxHome; name: string } {
  const home = new FuncxHome(join(tmp, `home-${name}`));
  home.ensure();
  mkdirSync(home.endpointDir(name), { recursive: true, mode: 0o700 });
  writeFileSync(join(home.endpointDir(name), 'config.ts'), SLURM_PROFILE.replace('SCRIPT_DIR', JSON.stringify(join(tmp, `scripts-${name}`))));
  return { home, name };
}

/** Jobs of this endpoint in squeue (any state but gone). */
function jobsOf(name: string): string[] {
  const out = execFileSync('squeue', ['--noheader', '--format=%i %j %T'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(`funcx-${name}-`));
}

function log(home: FuncxHome, name: string): string {
  return existsSync(home.logFile(name)) ? readFileSync(home.logFile(name), 'utf8') : '';
}

/** Start the daemon detached; returns its pid (from the lease, which it takes first) and the start promise. */
async function launch(home: FuncxHome, name: string, serviceUrl: string, token = TOKEN): Promise<{ pid: number; started: Promise<unknown> }> {
  const started = startDaemon(home, name, { serviceUrl, token, timeoutMs: 120_000 }).then(
    (r) => ({ ok: true, r }),
    (err: Error) => ({ ok: false, err }),
  );
  const lease = await untilValue('the daemon takes its lease', () => readLease(home.pidFile(name)));
  return { pid: lease!.pid, started };
}

/** Nothing behind: daemon gone, lease gone, no job in squeue, no process of this endpoint. */
async function assertNothingLeft(home: FuncxHome, name: string, pid: number): Promise<void> {
  await until(`daemon ${pid} exits`, () => !processExists(pid));
  assert.ok(!existsSync(home.pidFile(name)), 'the lease is given up');
  await until(`no job of ${name} in squeue`, () => jobsOf(name).length === 0);
  const procs = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(home.root) || l.includes(`funcx-${name}-`));
  assert.deepEqual(procs.filter((l) => !l.includes('ps -eo')), [], 'no process of this endpoint is left');
}

test('stop while registering: the daemon stops at once, nothing was submitted', async () => {
  const { home, name } = makeHome('stop-reg');
  onRegister = (_req, res) => held.push(res); // never answered
  const before = registrations.length;
  const { pid, started } = await launch(home, name, fakeUrl);
  await until('the registration reaches the service', () => registrations.length > before);
  await until('the daemon says it is registering', () => log(home, name).includes('state starting → registering'));
  process.kill(pid, 'SIGTERM');
  const outcome = (await started) as { ok: boolean; err?: Error };
  assert.equal(outcome.ok, false);
  assert.match(String(outcome.err?.message), /stopped while starting/);
  await assertNothingLeft(home, name, pid);
  const text = log(home, name);
  assert.match(text, /state registering → stopping: received SIGTERM/);
  assert.match(text, /state stopping → stopped/);
  assert.doesNotMatch(text, /engine-starting|submitted as job/);
});

test('stop while the engine submits its init block: the job made after the stop began is cancelled', async () => {
  const { home, name } = makeHome('stop-eng');
  onRegister = async (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ endpointId: randomUUID(), forwarder: await deadForwarder(), protocol: PROTOCOL_VERSION }));
  };
  const gate = join(tmp, 'gate-eng');
  mkdirSync(gate);
  const previous = { PATH: process.env.PATH, dir: process.env.FUNCX_TEST_SBATCH_DIR };
  process.env.PATH = `${sbatchDir}:${process.env.PATH}`;
  process.env.FUNCX_TEST_SBATCH_DIR = gate;
  let pid = 0;
  let started: Promise<unknown>;
  try {
    ({ pid, started } = await launch(home, name, fakeUrl));
  } finally {
    process.env.PATH = previous.PATH;
    if (previous.dir === undefined) delete process.env.FUNCX_TEST_SBATCH_DIR;
    else process.env.FUNCX_TEST_SBATCH_DIR = previous.dir;
  }
  await until('the first block is being submitted (sbatch called)', () => existsSync(join(gate, 'called')));
  const phase = /state registering → engine-starting/.test(log(home, name));
  assert.ok(phase, 'the engine was started');
  process.kill(pid, 'SIGTERM');
  await until('the daemon began stopping', () => /received SIGTERM/.test(log(home, name)));
  process.kill(pid, 'SIGTERM'); // a second signal during the stop does not kill it
  writeFileSync(join(gate, 'release'), ''); // only now does the job exist
  const outcome = (await started) as { ok: boolean };
  assert.equal(outcome.ok, false);
  await assertNothingLeft(home, name, pid);
  const text = log(home, name);
  assert.match(text, /state (engine-starting|connecting) → stopping: received SIGTERM/);
  assert.match(text, /block 0 submitted as job \d+/);
  assert.match(text, /cancelled block\(s\) 0 \(job \d+\)/);
  assert.match(text, /received SIGTERM \(already stopping\)/);
  assert.match(text, /state stopping → stopped/);
});

test('stop while the forwarder is connecting: the queued block is cancelled', async () => {
  const { home, name } = makeHome('stop-fwd');
  onRegister = async (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ endpointId: randomUUID(), forwarder: await deadForwarder(), protocol: PROTOCOL_VERSION }));
  };
  const { pid, started } = await launch(home, name, fakeUrl);
  await until('the block is submitted', () => /block 0 submitted as job \d+/.test(log(home, name)));
  assert.match(log(home, name), /state engine-starting → connecting/);
  process.kill(pid, 'SIGTERM');
  const outcome = (await started) as { ok: boolean };
  assert.equal(outcome.ok, false);
  await assertNothingLeft(home, name, pid);
  const text = log(home, name);
  assert.match(text, /state connecting → stopping: received SIGTERM/, 'stopped while connecting (not after the 10 s connect timeout)');
  assert.match(text, /cancelled block\(s\) 0 \(job \d+\)/);
  assert.match(text, /state stopping → stopped/);
  assert.doesNotMatch(text, /→ failed/, 'a stop is not a failure');
});

test('a start that fails ends in failed (not overwritten by stopped), its block cancelled', async () => {
  const { home, name } = makeHome('fail-fwd');
  onRegister = async (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ endpointId: randomUUID(), forwarder: await deadForwarder(), protocol: PROTOCOL_VERSION }));
  };
  const { pid, started } = await launch(home, name, fakeUrl);
  const outcome = (await started) as { ok: boolean; err?: Error };
  assert.equal(outcome.ok, false);
  assert.match(String(outcome.err?.message), /did not answer/);
  await assertNothingLeft(home, name, pid);
  const text = log(home, name);
  assert.match(text, /state stopping → failed/);
  assert.doesNotMatch(text, /→ stopped/);
});

test('the daemon gets its token over IPC: not in /proc/PID/environ', async () => {
  const home = new FuncxHome(join(tmp, 'home-env'));
  home.ensure();
  mkdirSync(home.endpointDir('env'), { recursive: true, mode: 0o700 });
  writeFileSync(join(home.endpointDir('env'), 'config.ts'), `import { Config, LocalProvider } from 'funcx-endpoint';
export default new Config({ engine: { address: '127.0.0.1' }, provider: new LocalProvider({ init_blocks: 0, min_blocks: 0, max_blocks: 1 }) });
`);
  const { pid } = await startDaemon(home, 'env', { serviceUrl: service.url, token: realToken });
  try {
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    assert.ok(environ.includes('FUNCX_HOME='), 'this is the daemon’s environment');
    assert.ok(!environ.includes(realToken), 'the token is not in the daemon’s environment');
    assert.equal(readLease(home.pidFile('env'))?.pid, pid);
  } finally {
    process.kill(pid, 'SIGTERM');
    await until('the daemon exits', () => !processExists(pid));
  }
  assert.ok(!existsSync(home.pidFile('env')));
});
