/**
 * Inside the engine a big function's source travels once per manager registration and once per worker
 * process (protocol/source-link.ts), not in every task (issue 11): 10,000 tasks naming a 1 MiB function
 * through a real interchange and manager move a few hundred bytes each to the manager; a manager that lacks a
 * source (a tasks message that lost it, or a manager killed and replaced) still runs every task once.
 *
 * Tasks are made as the endpoint makes them (EndpointSourceCache.expand from a forwarder tasks message).
 * FUNCX_TEST_TASKS sets the batch size (the old code, which copied the source into every task, was measured
 * with a few hundred).
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startEngine, type EngineFixture } from '../helpers/engine-fixture.js';
import { until } from '../helpers/wait.js';
import { decodeOutcome, encodeArgs } from '../../src/protocol/payload.js';
import { encode, decodeFrame } from '../../src/protocol/codec.js';
import { sourceHash } from '../../src/protocol/function-sources.js';
import type { ResultEnvelope, TaskEnvelope } from '../../src/protocol/messages.js';
import { EndpointSourceCache } from '../../src/endpoint/service-link/function-cache.js';

const N = Number(process.env.FUNCX_TEST_TASKS ?? 10_000);
const SOURCE = `(x) => x + 1 /* ${'m'.repeat(1024 * 1024)} */`;
const FN = 'fn-big';
const HASH = sourceHash(SOURCE);

let f: EngineFixture;
/** Bytes the interchange handed its socket for managers, and a hook that may rewrite a frame. */
let sentBytes = 0;
let rewrite: ((frame: Buffer) => Buffer) | undefined;

before(async () => {
  f = await startEngine({ heartbeatPeriodMs: 300, heartbeatThresholdMs: 8_000, maxRetries: 2 });
  const writer = (f.interchange as unknown as { writer: { send(frames: Buffer[]): void } }).writer;
  const send = writer.send.bind(writer);
  writer.send = (frames: Buffer[]) => {
    if (rewrite) frames = [frames[0], rewrite(frames[1])];
    sentBytes += frames[1].length;
    send(frames);
  };
});
after(async () => {
  await f.stop();
});

let batchNo = 0;
/** `n` tasks naming the big function, as the endpoint builds them from what the forwarder sent. */
function bigTasks(n: number): TaskEnvelope[] {
  const b = batchNo++;
  const tasks = Array.from({ length: n }, (_, i) => ({ id: `big-${b}-${i}`, fn: FN, h: HASH, payload: encodeArgs([i]) }));
  const { ready, missing } = new EndpointSourceCache().expand({ tasks, functions: { [FN]: { hash: HASH, source: SOURCE } } });
  assert.equal(missing.length, 0);
  return ready;
}

/** Submit and wait for every result; every task ran once and returned its argument + 1. */
async function runAll(tasks: TaskEnvelope[]): Promise<void> {
  const got = new Map<string, ResultEnvelope>();
  f.interchange.onResults = (results) => {
    for (const r of results) {
      assert.ok(!got.has(r.id), `task ${r.id} answered twice`);
      got.set(r.id, r);
    }
  };
  f.interchange.submitMany(tasks);
  await until(`${tasks.length} results`, () => got.size === tasks.length, { timeoutMs: 60_000 });
  for (let i = 0; i < tasks.length; i++) {
    const r = got.get(tasks[i].id)!;
    assert.deepEqual(decodeOutcome(r.payload), { ok: true, value: i + 1 }, `task ${tasks[i].id}`);
    assert.equal(r.failed, false);
  }
}

test(`${N} tasks naming a 1 MiB function send the source to the manager once, not once per task`, async () => {
  const m = f.startManager(['--max-workers', '2', '--block-id', 'once']);
  await until('a manager to register', () => f.interchange.registry.size === 1);
  sentBytes = 0;
  await runAll(bigTasks(N));
  const perTask = (sentBytes - SOURCE.length) / N;
  console.log(`# bytes to the manager: ${sentBytes} for ${N} tasks (${perTask.toFixed(0)} per task besides one source of ${SOURCE.length})`);
  assert.ok(sentBytes < SOURCE.length * 2 + N * 1024, `sent ${sentBytes} bytes for ${N} tasks naming a ${SOURCE.length}-character source`);
  m.kill('SIGKILL');
  await until('the manager to be gone', () => f.interchange.registry.size === 0, { timeoutMs: 30_000 });
});

test('a manager that lacks the source (a tasks message lost it) hands its tasks back; all run once, none fail', async () => {
  f.startManager(['--max-workers', '2', '--block-id', 'lossy']);
  await until('a manager to register', () => f.interchange.registry.size === 1);
  // The first message carrying the source reaches the manager without it: what a lost message leaves.
  let stripped = 0;
  rewrite = (frame) => {
    const m = decodeFrame(frame);
    if (m.kind !== 'tasks' || m.functions === undefined || stripped > 0) return frame;
    stripped++;
    delete m.functions;
    return encode(m as never);
  };
  sentBytes = 0;
  await runAll(bigTasks(2000));
  rewrite = undefined;
  assert.equal(stripped, 1);
  assert.ok(sentBytes < SOURCE.length * 3 + 2000 * 1024, `sent ${sentBytes} bytes: the source went again once, not per task`);
});

test('a manager killed mid-batch is replaced; the new one is sent the source and every task runs', async () => {
  const victim = f.managers[f.managers.length - 1];
  const tasks = bigTasks(3000);
  const done = runAll(tasks);
  await until('some tasks to run', () => f.interchange.pending < tasks.length - 200);
  victim.kill('SIGKILL');
  f.startManager(['--max-workers', '2', '--block-id', 'second']);
  await done;
});
