/**
 * The worker channel's parsers, one per direction: every valid message parses to itself, and each invalid
 * field is rejected with a ProtocolError naming the message and the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from '../../src/protocol/codec.js';
import { encodeLengthPrefixed, FrameReader } from '../../src/protocol/frames.js';
import {
  PROTOCOL_VERSION,
  parseFromInterchange,
  parseFromManager,
  parseFromWorker,
  parseToWorker,
  type RegisterMessage,
  type WorkerChannelMessage,
} from '../../src/protocol/messages.js';
import { ProtocolError } from '../../src/errors.js';
import { encodeRaw } from '../helpers/raw-frame.js';

type Parser = (frame: Uint8Array) => unknown;

const bytes = Buffer.from([1, 2, 3]);
const task = { id: 't1', fn: 'f', wt: 1000, payload: bytes };
const result = { id: 't1', failed: false, payload: bytes, ms: 1.5 };
const register: RegisterMessage = {
  kind: 'register', protocol: PROTOCOL_VERSION, managerId: 'm1', hostname: 'h', blockId: 'b', node: 'n', workers: 2, cores: 2,
  memoryMiB: 1024, capacity: 2, endsAt: null, pid: 42,
};

/** Decoded values compare equal to what was sent (Buffers come back as Buffers). */
function roundTrip(parse: Parser, message: WorkerChannelMessage): void {
  assert.deepEqual(parse(encode(message)), message, `${message.kind} parses to itself`);
}

/** `message` with `field` set to `value` (or removed when value is `undefined` and `remove`) is refused naming it. */
function refused(parse: Parser, message: Record<string, unknown>, field: string, value: unknown, pattern?: RegExp): void {
  const bad = structuredClone(message);
  setPath(bad, field, value);
  assert.throws(
    () => parse(encodeRaw(bad)),
    (err: unknown) => {
      assert.ok(err instanceof ProtocolError, `a ProtocolError, got ${String(err)}`);
      assert.match(err.message, pattern ?? new RegExp(`^${message.kind}\\.${field.replace(/[[\].]/g, '\\$&')} must be `));
      assert.equal(err.messageKind, message.kind);
      return true;
    },
    `${message.kind}.${field} = ${String(value)} is refused`,
  );
}

function setPath(o: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(/[.[\]]+/).filter(Boolean);
  let at = o as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) at = at[k] as Record<string, unknown>;
  if (value === undefined) delete at[keys.at(-1)!];
  else at[keys.at(-1)!] = value;
}

// ---- manager → interchange ---------------------------------------------------------------------------------

test('parseFromManager: register, results, heartbeat and bye parse to themselves', () => {
  roundTrip(parseFromManager, register);
  roundTrip(parseFromManager, { ...register, endsAt: Date.now() + 60_000 });
  roundTrip(parseFromManager, { kind: 'results', results: [result, { id: 't2', failed: true, payload: bytes }] });
  roundTrip(parseFromManager, { kind: 'results', results: [], capacity: 0 });
  roundTrip(parseFromManager, { kind: 'results', results: [result], nodes: [{ node: 'n1', task: 't1' }, { node: 'n2', task: null }] });
  roundTrip(parseFromManager, { kind: 'heartbeat' });
  roundTrip(parseFromManager, { kind: 'bye', reason: 'drained' });
});

test('parseFromManager: a heartbeat may carry the worker pools (status); each field is checked and named', () => {
  const beat = { kind: 'heartbeat' as const, pools: [{ user: '', running: 2, idle: 0, queued: 5 }, { user: 'alice', running: 0, idle: 1, queued: 0 }] };
  roundTrip(parseFromManager, beat);
  roundTrip(parseFromManager, { kind: 'heartbeat', pools: [] });
  refused(parseFromManager, beat, 'pools', {});
  refused(parseFromManager, beat, 'pools[0].user', 3);
  refused(parseFromManager, beat, 'pools[1].running', -1);
  refused(parseFromManager, beat, 'pools[1].idle', 0.5);
  refused(parseFromManager, beat, 'pools[0].queued', undefined);
});

test('parseFromManager: a register with another protocol version names both versions, before any other field', () => {
  assert.throws(
    () => parseFromManager(encodeRaw({ kind: 'register', protocol: 999 })),
    (err: ProtocolError) => err.messageKind === 'register' && new RegExp(`999.*${PROTOCOL_VERSION}`).test(err.message),
  );
});

test('parseFromManager: each bad register field is named', () => {
  const r = register as unknown as Record<string, unknown>;
  for (const [field, values] of Object.entries({
    managerId: [undefined, '', 5],
    hostname: [undefined, 7],
    blockId: [null, 1],
    node: [undefined, {}],
    workers: [undefined, 0, -3, 1.5, 1e9, 'many'],
    cores: [undefined, -1, 'x'],
    memoryMiB: [undefined, -1, 'lots', NaN],
    capacity: [undefined, 0, 1.5, 'one'],
    endsAt: [undefined, 'soon', Infinity],
    pid: [undefined, -1, 'me'],
  })) {
    for (const v of values) refused(parseFromManager, r, field, v);
  }
});

test('parseFromManager: each bad results field is named, down to the entry', () => {
  const m = { kind: 'results', results: [{ ...result }, { ...result }] };
  refused(parseFromManager, m, 'results', 'nope');
  refused(parseFromManager, m, 'results', undefined);
  refused(parseFromManager, m, 'results[1]', null);
  refused(parseFromManager, m, 'results[1].id', 5);
  refused(parseFromManager, m, 'results[0].failed', 'no');
  refused(parseFromManager, m, 'results[1].payload', 'str');
  refused(parseFromManager, m, 'results[1].ms', 'fast');
  refused(parseFromManager, m, 'results[1].ms', -1);
  refused(parseFromManager, m, 'nodes', 'n1');
  refused(parseFromManager, m, 'capacity', -1);
  refused(parseFromManager, m, 'capacity', 2.5);
  refused(parseFromManager, { kind: 'bye', reason: 'x' }, 'reason', 42);
});

test('parseFromManager: kinds of other directions, unknown kinds and non-messages are refused', () => {
  for (const kind of ['tasks', 'registered', 'drain', 'shutdown', 'ready', 'mystery', 'hello']) {
    assert.throws(() => parseFromManager(encodeRaw({ kind, tasks: [] })), new RegExp(`unexpected message kind "${kind}" from a manager`));
  }
  assert.throws(() => parseFromManager(Buffer.alloc(0)), /empty frame/);
  assert.throws(() => parseFromManager(Buffer.from([0x92, 0x01])), /not msgpack/); // an array of 2 with 1 element
  assert.throws(() => parseFromManager(encodeRaw([1, 2])), /not a message object/);
  assert.throws(() => parseFromManager(encodeRaw({ nokind: true })), /no string "kind"/);
});

// ---- interchange → manager ---------------------------------------------------------------------------------

test('parseFromInterchange: every message parses to itself; bad fields are named', () => {
  const registered = { kind: 'registered', protocol: PROTOCOL_VERSION, heartbeatPeriodMs: 1000, heartbeatThresholdMs: 5000 } as const;
  roundTrip(parseFromInterchange, registered);
  roundTrip(parseFromInterchange, { kind: 'refused', reason: 'no' });
  roundTrip(parseFromInterchange, { kind: 'tasks', tasks: [task, { id: 't2', payload: bytes }] });
  roundTrip(parseFromInterchange, { kind: 'heartbeat' });
  roundTrip(parseFromInterchange, { kind: 'drain' });
  roundTrip(parseFromInterchange, { kind: 'shutdown' });
  refused(parseFromInterchange, registered, 'protocol', 'one');
  refused(parseFromInterchange, registered, 'heartbeatPeriodMs', -5);
  refused(parseFromInterchange, registered, 'heartbeatThresholdMs', undefined);
  refused(parseFromInterchange, { kind: 'refused', reason: 'x' }, 'reason', undefined);
  const tasks = { kind: 'tasks', tasks: [task] };
  refused(parseFromInterchange, tasks, 'tasks', {});
  refused(parseFromInterchange, tasks, 'tasks[0]', 'x');
  refused(parseFromInterchange, tasks, 'tasks[0].id', 1);
  refused(parseFromInterchange, tasks, 'tasks[0].payload', [1, 2]);
  refused(parseFromInterchange, tasks, 'tasks[0].fn', 3);
  refused(parseFromInterchange, tasks, 'tasks[0].wt', -1);
  for (const kind of ['register', 'results', 'bye', 'ready', 'mystery']) {
    assert.throws(() => parseFromInterchange(encodeRaw({ kind })), new RegExp(`unexpected message kind "${kind}" from the interchange`));
  }
});

// ---- manager ⇄ worker ----------------------------------------------------------------------------------------

test('parseToWorker and parseFromWorker: each direction takes its own kinds only', () => {
  roundTrip(parseToWorker, { kind: 'tasks', tasks: [task] });
  roundTrip(parseToWorker, { kind: 'shutdown' });
  roundTrip(parseFromWorker, { kind: 'ready', pid: 7 });
  roundTrip(parseFromWorker, { kind: 'results', results: [result] });
  refused(parseToWorker, { kind: 'tasks', tasks: [task] }, 'tasks[0].payload', 'x');
  refused(parseFromWorker, { kind: 'ready', pid: 7 }, 'pid', 'seven');
  refused(parseFromWorker, { kind: 'results', results: [result] }, 'results[0].id', null);
  assert.throws(() => parseToWorker(encodeRaw({ kind: 'results', results: [] })), /unexpected message kind "results" from the manager/);
  assert.throws(() => parseFromWorker(encodeRaw({ kind: 'tasks', tasks: [] })), /unexpected message kind "tasks" from a worker/);
});

test('FrameReader parses length-prefixed frames split anywhere, with the parser it was given', () => {
  const stream = Buffer.concat([
    encodeLengthPrefixed({ kind: 'ready', pid: 1 }),
    encodeLengthPrefixed({ kind: 'results', results: [result] }),
  ]);
  for (let cut = 0; cut <= stream.length; cut++) {
    const reader = new FrameReader(parseFromWorker);
    const got = [...reader.push(stream.subarray(0, cut)), ...reader.push(stream.subarray(cut))];
    assert.deepEqual(got.map((m) => m.kind), ['ready', 'results']);
  }
  const bad = new FrameReader(parseFromWorker);
  assert.throws(() => bad.push(encodeLengthPrefixed({ kind: 'tasks', tasks: [] })), /unexpected message kind "tasks" from a worker/);
});
