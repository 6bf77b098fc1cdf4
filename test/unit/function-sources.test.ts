/**
 * A function's source goes to an endpoint once per connection (issue 11): the forwarder's sent set
 * (SentSources, prepareTasks), the endpoint's cache (EndpointSourceCache), the invariant between them (what
 * the forwarder believes sent is still at the endpoint, whatever the order of functions and budgets), and
 * the wire format of a tasks message with `functions`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from '../../src/protocol/codec.js';
import { parseFromForwarder } from '../../src/protocol/forwarder-messages.js';
import { decodeArgs, decodeTask, encodeArgs, encodeTask } from '../../src/protocol/payload.js';
import { SOURCES_PER_MESSAGE, SizedLru, sourceHash } from '../../src/protocol/function-sources.js';
import type { TaskEnvelope, TasksMessage } from '../../src/protocol/messages.js';
import { FunctionSources, SentSources, prepareTasks } from '../../src/service/task-payloads.js';
import { EndpointSourceCache } from '../../src/endpoint/service-link/function-cache.js';
import { ProtocolError } from '../../src/errors.js';
import { rng } from '../helpers/rng.js';

function sourcesFrom(table: Map<string, string>): FunctionSources {
  return new FunctionSources(async (id) => table.get(id));
}

let nextId = 0;
function task(fn: string, arg: unknown): TaskEnvelope {
  return { id: `t${nextId++}`, fn, payload: encodeArgs([arg]) };
}

/** Send messages through the wire codec, as the sockets do. */
function wire(m: TasksMessage): TasksMessage {
  return parseFromForwarder('tasks', encode(m)) as TasksMessage;
}

test('SizedLru evicts the least recently used entries past its budget, keeps the newest even when alone over it', () => {
  const lru = new SizedLru<string>(10, (v) => v.length);
  lru.set('a', 'aaaa');
  lru.set('b', 'bbbb');
  assert.equal(lru.get('a'), 'aaaa'); // a is now the most recent
  lru.set('c', 'cccc'); // 12 > 10: b (least recent) goes
  assert.deepEqual([...lru.keys()], ['a', 'c']);
  assert.equal(lru.bytes, 8);
  lru.set('d', 'd'.repeat(20));
  assert.deepEqual([...lru.keys()], ['d']);
  assert.equal(lru.bytes, 20);
  lru.set('d', 'dd');
  assert.equal(lru.bytes, 2);
  assert.equal(lru.peek('d'), 'dd');
});

test('the forwarder sends a source once per connection, again after a reset, and the endpoint builds full payloads', async () => {
  const source = `(x) => x + 1 /* ${'s'.repeat(1000)} */`;
  const table = new Map([['f1', source]]);
  const sources = sourcesFrom(table);
  const sent = new SentSources();
  const endpoint = new EndpointSourceCache();

  const first = await prepareTasks([task('f1', 1), task('f1', 2)], sources, sent);
  assert.equal(first.messages.length, 1);
  assert.deepEqual(Object.keys(first.messages[0].functions ?? {}), ['f1']);
  assert.equal(first.messages[0].functions!.f1.hash, sourceHash(source));
  assert.ok(first.messages[0].tasks.every((t) => t.h === sourceHash(source) && decodeArgs(t.payload).length === 1), 'tasks carry only their arguments');

  const second = await prepareTasks([task('f1', 3)], sources, sent);
  assert.equal(second.messages[0].functions, undefined, 'not sent twice on one connection');
  assert.equal(sent.sentCount, 1);
  assert.equal(sent.sentChars, source.length);

  const out = [...first.messages, ...second.messages].map((m) => endpoint.expand(wire(m)));
  assert.ok(out.every((o) => o.missing.length === 0));
  const bodies = out.flatMap((o) => o.ready).map((t) => {
    assert.equal(t.h, undefined, 'the interchange gets no hash field');
    return decodeTask(t.payload);
  });
  assert.deepEqual(bodies.map((b) => (b.kind === 'js' ? [b.functionId, b.source === source, decodeArgs(b.args)[0]] : null)), [
    ['f1', true, 1], ['f1', true, 2], ['f1', true, 3],
  ]);

  sent.reset();
  const third = await prepareTasks([task('f1', 4)], sources, sent);
  assert.deepEqual(Object.keys(third.messages[0].functions ?? {}), ['f1'], 'after a new connection the source goes again');
  assert.equal(sent.sentCount, 2);
});

test('tasks that are not args-only pass as they are; a deleted function fails its tasks as FunctionNotFound', async () => {
  const sent = new SentSources();
  const full: TaskEnvelope = { id: 'shell', payload: encodeTask({ kind: 'shell', command: 'true' }) };
  const old: TaskEnvelope = { id: 'old', fn: 'f1', payload: encodeTask({ kind: 'js', functionId: 'f1', source: '() => 1', args: new Uint8Array() }) };
  const { messages, gone } = await prepareTasks([full, old, task('deleted', 1)], sourcesFrom(new Map([['f1', '() => 1']])), sent);
  assert.deepEqual(messages[0].tasks, [full, old]);
  assert.equal(messages[0].functions, undefined);
  assert.equal(gone.length, 1);
  assert.equal(gone[0].failed, true);
  const { ready, missing } = new EndpointSourceCache().expand(wire(messages[0]));
  assert.deepEqual(ready.map((t) => t.id), ['shell', 'old']);
  assert.equal(missing.length, 0);
});

test('the endpoint reports a task naming a source it does not hold as missing (never builds a payload without it)', async () => {
  const table = new Map([['f1', '() => 1']]);
  const sent = new SentSources();
  const sources = sourcesFrom(table);
  await prepareTasks([task('f1', 1)], sources, sent); // this message is "lost": the endpoint never sees it
  const next = await prepareTasks([task('f1', 2)], sources, sent);
  assert.equal(next.messages[0].functions, undefined);
  const endpoint = new EndpointSourceCache();
  const { ready, missing } = endpoint.expand(wire(next.messages[0]));
  assert.equal(ready.length, 0);
  assert.deepEqual(missing.map((t) => decodeArgs(t.payload)[0]), [2]);
  // A hash the endpoint does not have (another version of the function id) is missing too.
  endpoint.expand({ tasks: [{ ...task('f1', 0), h: 'old' }], functions: { f1: { hash: 'old', source: '() => 0' } } });
  assert.equal(endpoint.has('f1', 'old'), true);
  assert.equal(endpoint.expand({ tasks: [{ ...task('f1', 3), h: sourceHash('() => 1') }] }).missing.length, 1);
});

test('a message carries at most SOURCES_PER_MESSAGE characters of new sources (more go in the next message)', async () => {
  const big = (i: number) => `() => ${i} /* ${'y'.repeat(1_000_000)} */`;
  const table = new Map(Array.from({ length: 20 }, (_, i) => [`f${i}`, big(i)] as [string, string]));
  const tasks = Array.from({ length: 40 }, (_, i) => task(`f${i % 20}`, i));
  const { messages } = await prepareTasks(tasks, sourcesFrom(table), new SentSources());
  assert.ok(messages.length >= 3, `split into ${messages.length} messages`);
  for (const m of messages) {
    const chars = Object.values(m.functions ?? {}).reduce((n, f) => n + f.source.length, 0);
    assert.ok(chars <= SOURCES_PER_MESSAGE + 1_000_100, `a message carries ${chars} characters of sources`);
  }
  assert.equal(messages.reduce((n, m) => n + m.tasks.length, 0), 40);
  const endpoint = new EndpointSourceCache();
  const ready = messages.flatMap((m) => endpoint.expand(wire(m)).ready);
  assert.equal(ready.length, 40);
  // A big source is not copied into each queued task: the payload is built when the interchange reads it.
  assert.ok(ready.every((t) => typeof Object.getOwnPropertyDescriptor(t, 'payload')?.get === 'function'));
  assert.ok(ready.every((t) => {
    const b = decodeTask(t.payload);
    return b.kind === 'js' && b.source === table.get(b.functionId);
  }));
});

for (const [forwarderBudget, endpointBudget] of [[3000, 3000], [3000, 6000], [1000, 1500]] as const) {
  test(`invariant: with budgets ${forwarderBudget} ≤ ${endpointBudget}, no task ever names a source the endpoint dropped`, async () => {
    const random = rng(forwarderBudget * 7 + endpointBudget);
    const table = new Map<string, string>();
    for (let i = 0; i < 30; i++) table.set(`f${i}`, `() => ${i} /* ${'z'.repeat(Math.floor(random() * 200))} */`);
    const sources = sourcesFrom(table);
    const sent = new SentSources(forwarderBudget);
    const endpoint = new EndpointSourceCache(endpointBudget);
    let carried = 0;
    let built = 0;
    for (let round = 0; round < 400; round++) {
      if (random() < 0.02) sent.reset(); // a reconnect: the endpoint keeps its cache
      if (random() < 0.02) table.set(`f${Math.floor(random() * 30)}`, `() => 'v${round}'`); // a new version of an id
      const n = 1 + Math.floor(random() * 8);
      const tasks = Array.from({ length: n }, () => task(`f${Math.floor(Math.pow(random(), 2) * 30)}`, round));
      const fresh = sourcesFrom(table); // the forwarder re-reads the table (a new version has a new hash)
      const { messages } = await prepareTasks(tasks, random() < 0.5 ? fresh : sources, sent);
      for (const m of messages) {
        carried += Object.keys(m.functions ?? {}).length;
        const { ready, missing } = endpoint.expand(wire(m));
        assert.deepEqual(missing.map((t) => t.fn), [], `round ${round}: missing sources`);
        built += ready.length;
      }
    }
    assert.ok(carried < built * 0.75, `sources were sent ${carried} times for ${built} tasks: the sent set saved nothing`);
  });
}

test('the tasks parser checks `functions` and `h`, naming the field at fault', () => {
  const ok: TasksMessage = { kind: 'tasks', tasks: [{ id: 'a', fn: 'f', h: 'abc', payload: Buffer.alloc(0) }], functions: { f: { hash: 'abc', source: '() => 1' } } };
  assert.deepEqual(parseFromForwarder('tasks', encode(ok)), ok);
  const bad = (m: unknown, field: string) =>
    assert.throws(() => parseFromForwarder('tasks', encode(m as TasksMessage)), (e: Error) => e instanceof ProtocolError && e.message.includes(field));
  bad({ ...ok, functions: [] }, 'functions');
  bad({ ...ok, functions: { f: { hash: 1, source: 'x' } } }, 'functions["f"]');
  bad({ ...ok, functions: { f: { hash: 'abc' } } }, 'functions["f"]');
  bad({ kind: 'tasks', tasks: [{ id: 'a', h: 'abc', payload: new Uint8Array() }] }, 'tasks[0].h');
});

test('a task keeps its routing fields (walltime, user) through prepareTasks and the endpoint cache, small and big sources', async () => {
  for (const source of ['(x) => x', `(x) => x /* ${'.'.repeat(5000)} */`]) {
    const sources = sourcesFrom(new Map([['f1', source]]));
    const t: TaskEnvelope = { id: 'routed', fn: 'f1', wt: 5000, u: 'user-2', payload: encodeArgs([7]) };
    const { messages } = await prepareTasks([t], sources, new SentSources());
    const { ready, missing } = new EndpointSourceCache().expand(parseFromForwarder('tasks', encode(messages[0])) as TasksMessage);
    assert.equal(missing.length, 0);
    const [out] = ready;
    assert.deepEqual({ id: out.id, fn: out.fn, wt: out.wt, u: out.u, h: out.h }, { id: 'routed', fn: 'f1', wt: 5000, u: 'user-2', h: undefined });
    const body = decodeTask(out.payload);
    assert.equal(body.kind === 'js' && body.source, source);
    assert.deepEqual(body.kind === 'js' && decodeArgs(body.args), [7]);
  }
});
