/**
 * Fuzz the forwarder: the real service in its own process (`funcx-service start --foreground`), 10,000
 * malformed frames on each of its three channels (tasks, results, commands) from peers that hold the
 * endpoint's registered CURVE key (so every frame reaches the application), replayed hellos and
 * registrations, plus a peer per channel with a wrong key (which must get nothing). Meanwhile a well-behaved
 * endpoint (the real ForwarderClient) keeps taking tasks and returning results that the SDK collects.
 * The service must not crash, every task must complete, its RSS must stay bounded and its warnings rate-limited.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { encodeRaw as encode } from '../helpers/raw-frame.js';
import { newKeyPair } from '../../src/protocol/keys.js';
import { PROTOCOL_VERSION } from '../../src/protocol/messages.js';
import { FORWARDER_CHANNELS, type ForwarderChannel } from '../../src/protocol/forwarder-messages.js';
import { encodeOutcome } from '../../src/protocol/payload.js';
import { registerEndpoint } from '../../src/endpoint/service-link/registration.js';
import { FuncXClient } from '../../src/sdk/client.js';
import { FakeEndpoint } from '../helpers/fake-endpoint.js';
import { setTimeout as pace } from 'node:timers/promises';
import { cliPath, Peer, runCli, tmpDir, until } from '../security/harness.js';
import { malformedFrame, prng } from './frames.js';

const FRAMES = Number(process.env.FUZZ_FRAMES ?? 10_000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261126);
/** Tasks the SDK submits every this many rounds (one frame on each channel per round). */
const SUBMIT_EVERY = 500;
const BATCH = 20;
/** Rounds at which a keyed peer replays a valid hello on every channel and the registration is replayed. */
const REPLAYS = [0.25, 0.5, 0.75].map((f) => Math.floor(FRAMES * f));
/** The fuzz is spread over this long, so the good endpoint works while it goes on and each replayed hello
 * is won back (within the 2 s heartbeat threshold) before the next. */
const SPREAD_MS = Number(process.env.FUZZ_SPREAD_MS ?? 12_000);
const RSS_LIMIT_MIB = 200;
const WARNING_LIMIT = 500;

const WEIRD: unknown[] = [null, true, -1, 1.5, 'x', 1e308, 2 ** 53 + 1, [], {}, { id: 1 }, Buffer.from('zz'), 'x'.repeat(300)];
const PEER_KINDS = ['ack', 'welcome', 'tasks', 'command', 'reset', 'refused', 'register', 'bye', 'mystery'];

/** One malformed (or replayed) frame for `channel`, as a keyed peer would send it. */
function forwarderFrame(rand: () => number, channel: ForwarderChannel, endpointId: string, seq: { n: number; last?: Buffer }): Buffer | Buffer[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const other = pick(FORWARDER_CHANNELS.filter((c) => c !== channel));
  switch (Math.floor(rand() * 12)) {
    case 0:
    case 1:
    case 2:
      // The worker-channel families: random bytes, truncated msgpack, wrong types, huge lengths, unknown kinds, ...
      return malformedFrame(rand, 'fuzz');
    case 3: {
      // A hello that must be refused: wrong endpoint, channel, version, session or credit.
      const hello: Record<string, unknown> = { kind: 'hello', protocol: PROTOCOL_VERSION, endpointId, channel, session: 's' };
      const flaw = Math.floor(rand() * 5);
      if (flaw === 0) hello.endpointId = pick([randomUUID(), '', 7, null]);
      if (flaw === 1) hello.channel = pick([other, 'all', 3]);
      if (flaw === 2) hello.protocol = pick([0, PROTOCOL_VERSION + 1, String(PROTOCOL_VERSION), null]);
      if (flaw === 3) hello.session = pick([null, 5, ['s']]);
      if (flaw === 4) hello.credit = pick([-1, 1.5, 'many', null, {}]);
      return encode(hello);
    }
    case 4: {
      // This channel's own messages with fields of the wrong type.
      if (channel === 'tasks') return encode({ kind: 'credit', n: pick(WEIRD) });
      if (channel === 'commands') return encode({ kind: 'command-reply', id: pick(WEIRD), ok: pick(WEIRD), result: pick(WEIRD) });
      return encode(rand() < 0.5 ? { kind: 'results', seq: pick(WEIRD), results: pick(WEIRD) } : { kind: 'running', ids: pick(WEIRD) });
    }
    case 5:
      // Well-formed messages of this channel, from a connection that has no session (or a hijacked one).
      if (channel === 'tasks') return encode({ kind: 'credit', n: Math.floor(rand() * 5) });
      if (channel === 'commands') return encode({ kind: 'command-reply', id: randomUUID(), ok: rand() < 0.5, error: 'fuzz' });
      return encode({ kind: 'running', ids: [randomUUID(), `not-a-uuid-${seq.n}`] });
    case 6:
    case 7: {
      // Results for tasks that do not exist (any channel: on the wrong ones they are an unexpected kind),
      // and the same batch again (a duplicate, so a duplicate ack).
      if (rand() < 0.3 && seq.last) return seq.last;
      const n = 1 + Math.floor(rand() * 5);
      const results = Array.from({ length: n }, () => ({ id: pick([randomUUID(), 'nope', '']), failed: rand() < 0.5, payload: encodeOutcome({ ok: true, value: 'forged' }) }));
      seq.last = encode({ kind: 'results', seq: pick([seq.n++, 0, seq.n]), results });
      return seq.last;
    }
    case 8:
      // Messages only the forwarder sends, or that belong to the worker channel.
      return encode({ kind: pick(PEER_KINDS), seq: 1, id: 'x', tasks: [], command: { name: 'stop' }, reason: 'fuzz' });
    case 9:
      // A real (not just claimed) large frame now and then; mostly a long id list.
      if (rand() < 0.02) return encode({ kind: 'results', seq: seq.n++, results: [{ id: randomUUID(), failed: false, payload: Buffer.alloc(4 * 1024 * 1024, 1) }] });
      return encode({ kind: 'running', ids: Array.from({ length: 2000 }, (_, i) => `id-${i}`) });
    case 10:
      // msgpack that is not a message object at all.
      return encode(pick([[1, 2, 3], 'kind', 42, { kind: 42 }, { kind: null }, { Kind: 'hello' }]) as object);
    default:
      return [encode({ kind: 'heartbeat' }), Buffer.from('extra'), Buffer.alloc(0)];
  }
}

/** The service's resident memory (MiB), from /proc. */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

test(`${FRAMES} malformed frames on each forwarder channel: no crash, the good endpoint's tasks complete, RSS bounded`, { timeout: 120_000 }, async (t) => {
  const home = tmpDir('fuzz-forwarder');
  const env: NodeJS.ProcessEnv = { ...process.env, FUNCX_SERVICE_HOME: join(home, 'service'), FUNCX_LOG_LEVEL: 'info' };
  mkdirSync(env.FUNCX_SERVICE_HOME!, { recursive: true, mode: 0o700 });
  const service = spawn(process.execPath, [cliPath('service'), 'start', '--foreground', '--port', '0', '--heartbeat-period-ms', '200', '--heartbeat-threshold-ms', '2000'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logLines: string[] = [];
  let partial = '';
  service.stderr!.on('data', (d: Buffer) => {
    const lines = (partial + d.toString('utf8')).split('\n');
    partial = lines.pop()!;
    logLines.push(...lines);
  });
  let stdout = '';
  service.stdout!.on('data', (d: Buffer) => (stdout += d));
  let exited: string | null = null;
  service.on('exit', (code, signal) => (exited = `code ${code} signal ${signal}`));
  t.after(async () => {
    if (exited === null) {
      service.kill('SIGTERM');
      await until('the service to exit', () => exited !== null, { timeoutMs: 10_000 }).catch(() => service.kill('SIGKILL'));
    }
  });
  await until('the service to listen', () => /listening on (\S+)/.test(stdout) || exited !== null);
  assert.equal(exited, null, `the service exited at start: ${logLines.join('\n')}`);
  const url = /listening on (\S+)/.exec(stdout)![1];
  const token = /fx_[A-Za-z0-9_-]+/.exec((await runCli('service', ['user', 'add', 'alice'], env)).stdout)![0];

  // The well-behaved endpoint and the SDK user.
  const keys = newKeyPair();
  const good = await FakeEndpoint.start(url, token, { name: 'good', keys, window: 100 });
  t.after(() => good.close());
  const sdk = new FuncXClient({ serviceUrl: url, token });
  const triple = await sdk.registerFunction((x: number) => x * 3, { name: 'triple' });
  const submitted: Array<{ id: string; x: number }> = [];
  const submit = async (n: number) => {
    const batch = sdk.createBatch();
    const xs = Array.from({ length: n }, () => submitted.length + Math.floor(Math.random() * 1000));
    for (const x of xs) batch.add(good.id, triple, x);
    (await sdk.batchRun(batch)).forEach((id, i) => submitted.push({ id, x: xs[i] }));
  };
  await submit(50);
  await sdk.getBatchResults(submitted.map((s) => s.id), { waitMs: 10_000 });
  const baseline = rssMiB(service.pid!);
  let peak = baseline;
  const sampler = setInterval(() => {
    if (exited === null) peak = Math.max(peak, rssMiB(service.pid!));
  }, 100);
  t.after(() => clearInterval(sampler));

  // Peers: two per channel with the endpoint's key, one per channel with a key nobody registered.
  const { ports, publicKey: serverKey } = good.forwarder;
  const at = (c: ForwarderChannel) => `tcp://127.0.0.1:${ports[c]}`;
  const keyed = Object.fromEntries(FORWARDER_CHANNELS.map((c) => [c, [0, 1].map(() => Peer.connect(at(c), { serverKey, keys }))])) as Record<ForwarderChannel, Peer[]>;
  const wrong = Object.fromEntries(FORWARDER_CHANNELS.map((c) => [c, Peer.connect(at(c), { serverKey, keys: newKeyPair(), sendTimeout: 0 })])) as Record<ForwarderChannel, Peer>;
  t.after(() => FORWARDER_CHANNELS.forEach((c) => [...keyed[c], wrong[c]].forEach((p) => p.close())));
  let blockedSends = 0;
  const sendSurely = async (p: Peer, frame: Buffer | Buffer[]) => {
    for (let tries = 0; !(await p.send(frame)); tries++) {
      blockedSends++;
      if (tries > 200) throw new Error('a fuzz peer could not send for 2 s');
      await pace(10); // back-pressure: ZeroMQ would not take the frame yet
    }
  };

  const rand = prng(SEED);
  const seqs = Object.fromEntries(FORWARDER_CHANNELS.map((c) => [c, { n: 1 }])) as Record<ForwarderChannel, { n: number; last?: Buffer }>;
  const started = Date.now();
  const executedBefore = good.executed.length;
  for (let i = 0; i < FRAMES; i++) {
    const due = started + (i * SPREAD_MS) / FRAMES;
    if (Date.now() < due - 20) await pace(due - Date.now()); // spread the fuzz over SPREAD_MS (a rate, not a wait for an event)
    for (const c of FORWARDER_CHANNELS) {
      await sendSurely(keyed[c][i % 2], forwarderFrame(rand, c, good.id, seqs[c]));
      if (i % 100 === 0) await wrong[c].send({ kind: 'hello', protocol: PROTOCOL_VERSION, endpointId: good.id, channel: c, session: 'wrong', credit: 100 });
    }
    if (REPLAYS.includes(i)) {
      // Replayed hellos from a keyed peer take the session over (the key is the endpoint's identity): the good
      // endpoint must win it back and lose no task; one replay grants credit so tasks go to the hijacker.
      for (const c of FORWARDER_CHANNELS) await sendSurely(keyed[c][0], encode({ kind: 'hello', protocol: PROTOCOL_VERSION, endpointId: good.id, channel: c, session: 'replay', credit: i === REPLAYS[1] ? 50 : 0 }));
      const again = await registerEndpoint(url, token, { name: 'good', endpointId: good.id, publicKey: keys.publicKey });
      assert.deepEqual(again.forwarder, good.forwarder, 'a replayed registration keeps the same forwarder');
    }
    if (i % SUBMIT_EVERY === 0) await submit(BATCH);
  }
  const fuzzSeconds = (Date.now() - started) / 1000;
  const executedDuring = good.executed.length - executedBefore;

  // Every task the SDK submitted completes, with the right value.
  const results = await sdk.getBatchResults<number>(submitted.map((s) => s.id), { waitMs: 45_000 });
  const pending = results.filter((r) => r.pending).length;
  const failed = results.filter((r) => !r.pending && !r.ok);
  assert.equal(pending, 0, `${pending} of ${results.length} tasks never completed`);
  assert.deepEqual(failed.map((r) => r.error), []);
  results.forEach((r, i) => assert.equal(r.value, submitted[i].x * 3));
  assert.ok(executedDuring >= (FRAMES / SUBMIT_EVERY / 2) * BATCH, `the good endpoint ran only ${executedDuring} tasks while the fuzz went on`);
  const t0 = Date.now();
  const last = await sdk.run(good.id, triple, 14);
  assert.equal(await sdk.getResult(last, { waitMs: 10_000 }), 42);
  const lastTaskMs = Date.now() - t0;

  // No crash: the process lives, answers, and no channel's receive loop died.
  assert.equal(exited, null, `the service exited: ${exited}\n${logLines.slice(-20).join('\n')}`);
  assert.equal((await fetch(`${url}/v1/health`)).status, 200);
  assert.deepEqual(logLines.filter((l) => / ERROR /.test(l)), []);
  // The wrong key got nothing on any channel, and was refused at the handshake.
  for (const c of FORWARDER_CHANNELS) {
    assert.deepEqual(wrong[c].kinds(), [], `the wrong-key peer on ${c} received something`);
    assert.ok(wrong[c].authFailures > 0, `the wrong-key peer on ${c} saw no refused handshake`);
  }
  // Each replayed hello was taken as a session (the keyed peer was welcomed): the good endpoint had to win it
  // back, and every task completing above shows it did.
  for (const c of FORWARDER_CHANNELS) {
    const welcomes = keyed[c][0].kinds().filter((k) => k === 'welcome').length;
    assert.equal(welcomes, REPLAYS.length, `the replayed hellos on ${c} were welcomed ${welcomes} times`);
  }
  const hijacked = keyed.tasks[0].kinds().filter((k) => k === 'tasks').length;
  // Forged results for unknown tasks created nothing: the only tasks are the SDK's.
  const db = new Database(join(env.FUNCX_SERVICE_HOME!, 'service.db'), { readonly: true, fileMustExist: true });
  const rows = (db.prepare('SELECT COUNT(*) AS n FROM tasks').get() as { n: number }).n;
  db.close();
  assert.equal(rows, submitted.length + 1);
  // Memory stays bounded, and floods are rate-limited rather than logged line by line.
  const warnings = logLines.filter((l) => / WARN /.test(l));
  const info = logLines.filter((l) => / INFO /.test(l));
  console.log(`# fuzz: ${FRAMES} frames x 3 channels in ${fuzzSeconds.toFixed(1)} s; ${submitted.length + 1} tasks ok (${executedDuring} run during the fuzz); ` +
    `${blockedSends} sends waited; service CPU ${cpuSeconds(service.pid!).toFixed(1)} s; RSS ${baseline.toFixed(0)} → peak ${peak.toFixed(0)} MiB; ${warnings.length} WARN, ${info.length} INFO lines; last task ${lastTaskMs} ms; ${hijacked} task batches went to the replaying peer; ` +
    `wrong-key handshakes refused ${FORWARDER_CHANNELS.map((c) => wrong[c].authFailures).join('/')}`);
  assert.ok(peak - baseline < RSS_LIMIT_MIB, `service RSS grew by ${(peak - baseline).toFixed(0)} MiB (from ${baseline.toFixed(0)})`);
  assert.ok(warnings.length < WARNING_LIMIT, `${warnings.length} WARN lines for ${3 * FRAMES} frames; first ones:\n${warnings.slice(0, 5).join('\n')}\nmost common:\n${mostCommon(warnings)}`);
});

/** CPU time (user + system) the process used so far, in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The most frequent warning shapes (ids and numbers blanked), for a failure message. */
function mostCommon(lines: string[]): string {
  const counts = new Map<string, number>();
  for (const l of lines) {
    const shape = l.replace(/^\S+ /, '').replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>').replace(/\d+/g, '<n>');
    counts.set(shape, (counts.get(shape) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.FUZZ_SHAPES ?? 4)).map(([s, n]) => `${n} × ${s}`).join('\n');
}
