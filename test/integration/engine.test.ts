/**
 * The core engine with real processes and real CURVE sockets: results, errors, and every failure the issue
 * names (worker or manager killed, functions that throw, hang or exit, bad frames, impostors).
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import * as zmq from 'zeromq';
import { startEngine, jsTask, shellTask, type EngineFixture } from '../helpers/engine-fixture.js';
import { until, untilEvent, untilValue } from '../helpers/wait.js';
import { EventEmitter } from 'node:events';
import type { ManagerRecord } from '../../src/endpoint/engine/manager-registry.js';
import { decodeOutcome, type ShellResult } from '../../src/protocol/payload.js';
import { encodeRaw } from '../helpers/raw-frame.js';
import { PROTOCOL_VERSION } from '../../src/protocol/messages.js';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let f: EngineFixture;

before(async () => {
  // A generous threshold: building 5,000 tasks below blocks this process's event loop for a second or more
  // on a loaded machine, and a 1.5 s threshold then made the manager leave (the interchange looked silent).
  f = await startEngine({ heartbeatPeriodMs: 300, heartbeatThresholdMs: 10_000, maxRetries: 1 });
  f.startManager(['--max-workers', '2', '--block-id', 'b0']);
  await until('a manager to register', () => f.interchange.registry.size === 1);
});
after(async () => {
  await f.stop();
});

test('a JS function runs and structured values survive the trip', async () => {
  const source = `(d, m, b, n) => ({ year: d.getUTCFullYear(), keys: [...m.keys()], len: b.length, big: n * 2n, when: d })`;
  const when = new Date(Date.UTC(2026, 10, 25));
  const r = await f.interchange.submit(jsTask(source, [when, new Map([['a', 1]]), Buffer.from('xyz'), 21n]));
  assert.equal(r.failed, false);
  const outcome = decodeOutcome(r.payload);
  assert.ok(outcome.ok);
  const value = outcome.value as { year: number; keys: string[]; len: number; big: bigint; when: Date };
  assert.deepEqual([value.year, value.keys, value.len, value.big], [2026, ['a'], 3, 42n]);
  assert.ok(value.when instanceof Date);
});

test('functions can load modules with require() and await import()', async () => {
  const r = await f.interchange.submit(jsTask("async () => [require('node:os').cpus().length > 0, (await import('node:path')).basename('/a/b.txt')]"));
  assert.deepEqual(decodeOutcome(r.payload), { ok: true, value: [true, 'b.txt'] });
});

test('async functions are awaited', async () => {
  const r = await f.interchange.submit(jsTask('async (x) => { await new Promise(r => setTimeout(r, 20)); return x + 1; }', [41]));
  assert.deepEqual(decodeOutcome(r.payload), { ok: true, value: 42 });
});

test('an exception comes back with type, message and stack', async () => {
  const r = await f.interchange.submit(jsTask('() => { throw new RangeError("too far") }'));
  assert.equal(r.failed, true);
  const outcome = decodeOutcome(r.payload);
  assert.ok(!outcome.ok);
  assert.equal(outcome.error.type, 'RangeError');
  assert.equal(outcome.error.message, 'too far');
  assert.match(outcome.error.stack ?? '', /RangeError: too far/);
});

test('a shell command returns returncode, stdout and stderr; walltime kills it', async () => {
  const r = await f.interchange.submit(shellTask('echo out; echo err >&2; exit 3'));
  const outcome = decodeOutcome(r.payload);
  assert.ok(outcome.ok);
  assert.deepEqual(outcome.value, { returncode: 3, stdout: 'out\n', stderr: 'err\n', timedOut: false });
  const slow = decodeOutcome((await f.interchange.submit(shellTask('sleep 5', 200))).payload);
  assert.ok(slow.ok);
  assert.equal((slow.value as ShellResult).returncode, 124);
  assert.equal((slow.value as ShellResult).timedOut, true);
});

test('a function that exits the process fails its task with WorkerLost; the worker is replaced', async () => {
  const r = await f.interchange.submit(jsTask('() => process.exit(7)'));
  assert.equal(r.failed, true);
  const outcome = decodeOutcome(r.payload);
  assert.ok(!outcome.ok);
  assert.equal(outcome.error.type, 'WorkerLost');
  assert.match(outcome.error.message, /exit code 7/);
  const again = await f.interchange.submit(jsTask('(x) => x * 2', [4]));
  assert.deepEqual(decodeOutcome(again.payload), { ok: true, value: 8 });
});

test('a worker killed with SIGKILL mid-task: that task fails with WorkerLost, queued ones still run', async () => {
  // The task writes its worker's pid to a file, then hangs: the test kills exactly that worker.
  const pidFile = join(mkdtempSync(join(tmpdir(), 'fx-sigkill-')), 'pid');
  const sleeper = f.interchange.submit(
    jsTask("async (file) => { const fs = require('node:fs'); fs.writeFileSync(file + '.tmp', String(process.pid)); fs.renameSync(file + '.tmp', file); await new Promise(() => {}); }", [pidFile]),
  );
  const busy = await untilValue('the hanging task to write its worker pid', () =>
    existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) || undefined : undefined,
  );
  process.kill(busy as number, 'SIGKILL');
  const r = await sleeper;
  assert.equal(r.failed, true);
  const outcome = decodeOutcome(r.payload);
  assert.ok(!outcome.ok);
  assert.equal(outcome.error.type, 'WorkerLost');
  assert.match(outcome.error.message, /SIGKILL/);
  const results = await Promise.all([1, 2, 3, 4].map((i) => f.interchange.submit(jsTask('(x) => x', [i]))));
  assert.deepEqual(results.map((x) => decodeOutcome(x.payload)), [1, 2, 3, 4].map((value) => ({ ok: true, value })));
});

test('a function that never returns is stopped at its walltime with WalltimeExceeded', async () => {
  const r = await f.interchange.submit(jsTask('() => new Promise(() => {})', [], 'hang', { wt: 300 }));
  assert.equal(r.failed, true);
  const outcome = decodeOutcome(r.payload);
  assert.ok(!outcome.ok);
  assert.equal(outcome.error.type, 'WalltimeExceeded');
});

test('many tasks in flight all come back exactly once', async () => {
  const n = 5000;
  const seen = new Map<string, number>();
  f.interchange.onResults = (results) => {
    for (const r of results) seen.set(r.id, (seen.get(r.id) ?? 0) + 1);
  };
  const tasks = Array.from({ length: n }, (_, i) => jsTask('(i) => i * i', [i], 'square'));
  f.interchange.submitMany(tasks);
  await until('all results', () => seen.size === n);
  assert.ok([...seen.values()].every((c) => c === 1));
  assert.equal(f.interchange.pending, 0);
});

test('malformed frames, impostors and unknown kinds are dropped; the interchange keeps serving', async () => {
  // A peer with the manager key (so it passes CURVE) that misbehaves in every way the issue lists.
  const rogue = new zmq.Dealer({
    routingId: 'rogue-1',
    linger: 0,
    curveServerKey: f.keys.interchange.publicKey,
    curvePublicKey: f.keys.manager.publicKey,
    curveSecretKey: f.keys.manager.secretKey,
  });
  rogue.connect(`tcp://127.0.0.1:${f.interchange.port}`);
  await rogue.send(Buffer.from([0xc1, 0xff, 0x00])); // not msgpack
  await rogue.send(encodeRaw({ kind: 'results', results: [{ id: 'x', failed: false, payload: Buffer.from('') }] })); // not registered
  await rogue.send(encodeRaw({ nokind: true }));
  await rogue.send(Buffer.alloc(0));
  await rogue.send([encodeRaw({ kind: 'heartbeat' }), Buffer.from('extra')]);
  const reg = { kind: 'register', protocol: PROTOCOL_VERSION, managerId: 'rogue-1', hostname: 'h', blockId: 'rb', node: 'n', workers: 1, cores: 1, memoryMiB: 0, capacity: 1, endsAt: null, pid: 1 };
  await rogue.send(encodeRaw(reg));
  const [frame] = await rogue.receive();
  assert.ok(frame.length > 0);
  await rogue.send(encodeRaw(reg)); // registers twice
  await rogue.send(encodeRaw({ kind: 'results', results: [{ id: 'never-given', failed: false, payload: Buffer.from('x') }] }));
  await rogue.send(encodeRaw({ kind: 'mystery' }));
  await rogue.send(encodeRaw({ kind: 'results', results: 'nope' }));
  // Frames of one connection are handled in order: once its bye is handled, so is everything before it.
  const gone = untilEvent<[ManagerRecord, string]>(f.interchange, 'manager-gone', { filter: (m) => m.id === 'rogue-1' });
  await rogue.send(encodeRaw({ kind: 'bye', reason: 'test over' }));
  const [, why] = await gone;
  assert.match(why, /test over/);
  rogue.close();
  const r = await f.interchange.submit(jsTask('() => "still serving"'));
  assert.deepEqual(decodeOutcome(r.payload), { ok: true, value: 'still serving' });
});

test('a peer without the manager key is refused by CURVE and gets nothing', async () => {
  const stranger = zmq.curveKeyPair();
  const peer = new zmq.Dealer({
    routingId: 'stranger',
    linger: 0,
    receiveTimeout: 0,
    curveServerKey: f.keys.interchange.publicKey,
    curvePublicKey: stranger.publicKey,
    curveSecretKey: stranger.secretKey,
  });
  // The positive event: the interchange's ZAP handler refuses the key, and the peer sees its handshake fail.
  const events = new EventEmitter();
  peer.events.on('handshake:error:auth', (e) => events.emit('refused', e));
  const refused = untilEvent(events, 'refused');
  peer.connect(`tcp://127.0.0.1:${f.interchange.port}`);
  const reg = { kind: 'register', protocol: PROTOCOL_VERSION, managerId: 'stranger', hostname: 'h', blockId: '', node: 'n', workers: 1, cores: 1, memoryMiB: 0, capacity: 1, endsAt: null, pid: 1 };
  void peer.send(encodeRaw(reg)).catch(() => {});
  await refused;
  await assert.rejects(peer.receive(), /Socket temporarily unavailable|timed out/i, 'nothing came back');
  peer.close();
  assert.equal(f.interchange.registry.get('stranger'), undefined);
});

test('a manager with another protocol version is refused with both versions named', async () => {
  const peer = new zmq.Dealer({
    routingId: 'old-manager',
    linger: 0,
    receiveTimeout: 3000,
    curveServerKey: f.keys.interchange.publicKey,
    curvePublicKey: f.keys.manager.publicKey,
    curveSecretKey: f.keys.manager.secretKey,
  });
  peer.connect(`tcp://127.0.0.1:${f.interchange.port}`);
  await peer.send(encodeRaw({ kind: 'register', protocol: 999, managerId: 'old-manager', hostname: 'h', blockId: '', node: 'n', workers: 1, cores: 1, memoryMiB: 0, capacity: 1, endsAt: null, pid: 1 }));
  const { decodeFrame } = await import('../../src/protocol/codec.js');
  const reply = decodeFrame((await peer.receive())[0]);
  peer.close();
  assert.equal(reply.kind, 'refused');
  assert.match(String(reply.reason), new RegExp(`999.*${PROTOCOL_VERSION}`));
});
