/**
 * The engine's source links (protocol/source-link.ts): a task holding a big source goes compact (`h` and its
 * argument bytes) and the source once per link; a reset link sends it again; a receiver that lacks it reports
 * the task missing; what the sender believes sent stays at the receiver whatever the order and sizes of
 * functions (the invariant of function-sources.ts); the wire parsers take `functions` and `missing`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from '../../src/protocol/codec.js';
import { decodeArgs, decodeTask, encodeArgs } from '../../src/protocol/payload.js';
import { sourceHash } from '../../src/protocol/function-sources.js';
import { parseFromInterchange, parseFromManager, parseToWorker, type TaskEnvelope, type TasksMessage } from '../../src/protocol/messages.js';
import { SourceReceiver, SourceSender } from '../../src/protocol/source-link.js';
import { heldSource } from '../../src/protocol/task-source.js';
import { EndpointSourceCache } from '../../src/endpoint/service-link/function-cache.js';
import { withFullPayload, workerTasksMessages } from '../../src/worker/function-sources-cache.js';
import { encodeRaw } from '../helpers/raw-frame.js';
import { rng } from '../helpers/rng.js';

let nextId = 0;
/** Tasks as the endpoint builds them (EndpointSourceCache.expand). */
function endpointTasks(fn: string, source: string, args: number[]): TaskEnvelope[] {
  const h = sourceHash(source);
  const tasks = args.map((a) => ({ id: `t${nextId++}`, fn, h, payload: encodeArgs([a]) }));
  return new EndpointSourceCache().expand({ tasks, functions: { [fn]: { hash: h, source } } }).ready;
}

test('10,000 tasks naming a 1 MiB function: the source crosses a link once, each task a few dozen bytes', () => {
  const source = `(x) => x * 2 /* ${'z'.repeat(1024 * 1024)} */`;
  const tasks = endpointTasks('big', source, Array.from({ length: 10_000 }, (_, i) => i));
  const sender = new SourceSender();
  const receiver = new SourceReceiver();
  let bytes = 0;
  const got: TaskEnvelope[] = [];
  for (let i = 0; i < tasks.length; i += 512) {
    for (const m of sender.messages(tasks.slice(i, i + 512))) {
      const frame = encode(m);
      bytes += frame.length;
      const { ready, missing } = receiver.expand(parseFromInterchange(frame) as TasksMessage);
      assert.equal(missing.length, 0);
      got.push(...ready);
    }
  }
  assert.equal(sender.sentCount, 1);
  assert.ok(bytes < source.length + 10_000 * 100, `${bytes} bytes for 10,000 tasks`);
  assert.equal(got.length, 10_000);
  const held = heldSource(got[7])!;
  assert.equal(held.source, source);
  assert.deepEqual(decodeArgs(held.args), [7]);
  // The MPI gate's view: a full payload, without the held source (so it travels whole to the worker).
  const full = withFullPayload(got[7]);
  assert.equal(heldSource(full), undefined);
  assert.equal(full.h, undefined);
  const body = decodeTask(full.payload);
  assert.equal(body.kind === 'js' && body.source, source);
});

test('small sources, shell tasks and plain payloads pass unchanged, in one message', () => {
  const small = endpointTasks('small', '(x) => x', [1, 2]);
  assert.equal(heldSource(small[0]), undefined, 'sources up to the eager size are inline');
  const sender = new SourceSender();
  const messages = sender.messages(small);
  assert.equal(messages.length, 1);
  assert.equal(messages[0].tasks, small);
  assert.equal(messages[0].functions, undefined);
});

test('a reset link sends the source again; a receiver without it reports the tasks missing', () => {
  const source = `(x) => x /* ${'y'.repeat(10_000)} */`;
  const sender = new SourceSender();
  const receiver = new SourceReceiver();
  const [m1] = sender.messages(endpointTasks('f', source, [1, 2]));
  assert.ok(m1.functions?.f);
  assert.equal(receiver.expand(parseToWorker(encode(m1)) as TasksMessage).missing.length, 0);
  const [m2] = sender.messages(endpointTasks('f', source, [3]));
  assert.equal(m2.functions, undefined, 'sent once per link');
  receiver.clear(); // a lost message or a restarted receiver
  const { ready, missing } = receiver.expand(parseToWorker(encode(m2)) as TasksMessage);
  assert.deepEqual([ready.length, missing.length], [0, 1]);
  sender.reset();
  const [m3] = sender.messages(endpointTasks('f', source, [3]));
  assert.ok(m3.functions?.f, 'after a reset the source goes again');
  assert.equal(receiver.expand(m3).missing.length, 0);
});

test('a new version of a function (another hash) is sent, and a task never runs another version', () => {
  const sender = new SourceSender();
  const receiver = new SourceReceiver();
  const v1 = `() => 1 /* ${'a'.repeat(5000)} */`;
  const v2 = `() => 2 /* ${'a'.repeat(5000)} */`;
  for (const [src, want] of [[v1, v1], [v2, v2], [v1, v1]] as const) {
    for (const m of sender.messages(endpointTasks('f', src, [0]))) {
      const { ready } = receiver.expand(parseFromInterchange(encode(m)) as TasksMessage);
      assert.equal(heldSource(ready[0])!.source, want);
    }
  }
});

test('whatever the functions, sizes and budgets, the receiver holds what the sender believes sent', () => {
  const rand = rng(11);
  const sources = Array.from({ length: 30 }, (_, i) => `(x) => ${i} /* ${'q'.repeat(4097 + Math.floor(rand() * 60_000))} */`);
  const sender = new SourceSender(200_000);
  const receiver = new SourceReceiver(300_000);
  for (let round = 0; round < 300; round++) {
    const batch: TaskEnvelope[] = [];
    const n = 1 + Math.floor(rand() * 20);
    for (let i = 0; i < n; i++) {
      const k = Math.floor(rand() * rand() * sources.length);
      batch.push(...endpointTasks(`f${k}`, sources[k], [i]));
    }
    for (const m of sender.messages(batch)) {
      const { missing, ready } = receiver.expand(parseFromInterchange(encode(m)) as TasksMessage);
      assert.equal(missing.length, 0, `round ${round}: ${missing.map((t) => t.fn).join(', ')} missing`);
      for (const t of ready) assert.equal(heldSource(t)!.hash, t.h);
    }
  }
});

test('each worker process has its own link: a new process is sent the source again', () => {
  const source = `(x) => x /* ${'w'.repeat(8000)} */`;
  const p1 = {};
  const p2 = {};
  const tasks = endpointTasks('f', source, [1]);
  assert.ok(workerTasksMessages(p1, tasks)[0].functions?.f);
  assert.equal(workerTasksMessages(p1, tasks)[0].functions, undefined);
  assert.ok(workerTasksMessages(p2, tasks)[0].functions?.f);
});

test('the manager hands tasks back with `missing`; a bad one is refused naming the field', () => {
  assert.deepEqual(parseFromManager(encodeRaw({ kind: 'missing', ids: ['a', 'b'] })), { kind: 'missing', ids: ['a', 'b'] });
  assert.throws(() => parseFromManager(encodeRaw({ kind: 'missing', ids: [1] })), /ids/);
  assert.throws(() => parseFromInterchange(encodeRaw({ kind: 'tasks', tasks: [], functions: { f: { hash: 1 } } })), /functions/);
});

test('the forwarder ↔ endpoint link keeps the same invariant (a source sent again within a message starts a new one)', async () => {
  const { FunctionSources, SentSources, prepareTasks } = await import('../../src/service/task-payloads.js');
  let missingTotal = 0;
  for (let seed = 1; seed <= 10; seed++) {
    const rand = rng(seed);
    const table = new Map(Array.from({ length: 30 }, (_, i) => [`f${i}`, `(x) => ${i} /* ${'q'.repeat(100 + Math.floor(rand() * 60_000))} */`]));
    const sent = new SentSources(200_000);
    const endpoint = new EndpointSourceCache(300_000);
    const sources = new FunctionSources(async (id) => table.get(id));
    for (let round = 0; round < 300; round++) {
      const n = 1 + Math.floor(rand() * 20);
      const tasks = Array.from({ length: n }, (_, i) => ({ id: `t${nextId++}`, fn: `f${Math.floor(rand() * rand() * 30)}`, payload: encodeArgs([i]) }));
      const { messages } = await prepareTasks(tasks, sources, sent);
      for (const m of messages) missingTotal += endpoint.expand(m).missing.length;
    }
  }
  assert.equal(missingTotal, 0, 'tasks the endpoint had to ask for again (the old order made 315 in 40 seeds)');
});
