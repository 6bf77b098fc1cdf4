/**
 * Functions of different users never share a worker process: tasks carrying a user id (`u`, set by the
 * service for users other than the endpoint's owner) run only in that user's own pool of workers.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startEngine, jsTask, type EngineFixture } from '../helpers/engine-fixture.js';
import { until } from '../helpers/wait.js';
import { decodeOutcome } from '../../src/protocol/payload.js';
import type { TaskEnvelope } from '../../src/protocol/messages.js';

let f: EngineFixture;

before(async () => {
  f = await startEngine({ heartbeatPeriodMs: 300, heartbeatThresholdMs: 10_000, maxRetries: 1, othersRunAnyFunction: true });
  f.startManager(['--max-workers', '2', '--block-id', 'b0']);
  await until('a manager to register', () => f.interchange.registry.size === 1);
});
after(async () => {
  await f.stop();
});

/** Each task reports its worker's pid and what an earlier task left in that process's globals. */
const PROBE = `async (who) => { const seen = globalThis.__left ?? null; globalThis.__left = who; await new Promise((r) => setTimeout(r, 5)); return { pid: process.pid, seen }; }`;

function task(user: string | undefined): TaskEnvelope {
  return jsTask(PROBE, [user ?? 'owner'], 'probe', user === undefined ? {} : { u: user });
}

test('two users and the owner on one endpoint: no worker process runs tasks of two of them', async () => {
  const users = [undefined, 'alice', 'bob'];
  const pids = new Map<string, Set<number>>();
  for (let round = 0; round < 4; round++) {
    const batch = users.flatMap((u) => Array.from({ length: 6 }, () => ({ who: u ?? 'owner', env: task(u) })));
    const results = await Promise.all(batch.map(async ({ who, env }) => ({ who, r: await f.interchange.submit(env) })));
    for (const { who, r } of results) {
      assert.equal(r.failed, false, `a task of ${who} failed: ${JSON.stringify(decodeOutcome(r.payload))}`);
      const out = decodeOutcome(r.payload) as { ok: true; value: { pid: number; seen: string | null } };
      const { pid, seen } = out.value;
      // What an earlier task left in this process came from the same user (or nobody).
      assert.ok(seen === null || seen === who, `a task of ${who} saw state left by ${seen} in pid ${pid}`);
      if (!pids.has(who)) pids.set(who, new Set());
      pids.get(who)!.add(pid);
    }
  }
  // The manager's heartbeat reports its pools (status shows them): the owner's and both users'.
  await until("the manager's heartbeat to report the three pools", () => {
    const users = (f.interchange.registry.all()[0]?.pools ?? []).map((p) => p.user).sort();
    return users.join(',') === ',alice,bob';
  });
  const all = [...pids.entries()];
  assert.equal(all.length, 3);
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      const shared = [...all[i][1]].filter((p) => all[j][1].has(p));
      assert.deepEqual(shared, [], `pids seen by both ${all[i][0]} and ${all[j][0]}`);
    }
  }
});

test("without allow_any_function_from, other users' tasks run only functions in allowed_functions; the owner's are unaffected", async () => {
  const { Interchange } = await import('../../src/endpoint/engine/interchange.js');
  const base = { keys: f.keys, address: '127.0.0.1', port: 0, heartbeatPeriodMs: 1000, heartbeatThresholdMs: 5000, maxRetries: 0, walltimeMarginMs: 0 };
  for (const allowedFunctions of [null, new Set(['other'])]) {
    const ix = new Interchange({ ...base, allowedFunctions });
    await ix.start();
    try {
      const r = await ix.submit(task('alice'));
      assert.equal(r.failed, true);
      const out = decodeOutcome(r.payload) as { ok: false; error: { type: string; message: string } };
      assert.equal(out.error.type, 'FunctionNotAllowed');
      assert.match(out.error.message, /allowed_functions/);
      // The owner's task is held (no manager here), not refused, when nothing limits the owner.
      if (allowedFunctions === null) {
        void ix.submit(task(undefined));
        assert.equal(ix.pending, 1);
      }
    } finally {
      await ix.stop({ graceMs: 0 });
    }
  }
});

test('a task header with an empty user id is refused by the parser', async () => {
  const { parseFromInterchange } = await import('../../src/protocol/messages.js');
  const { encodeRaw } = await import('../helpers/raw-frame.js');
  assert.throws(() => parseFromInterchange(encodeRaw({ kind: 'tasks', tasks: [{ id: 't', payload: new Uint8Array(0), u: '' }] })), /tasks\[0\]\.u/);
});
