/**
 * Limits checked at the service, whoever runs the endpoint: a result over the service's size limit is stored
 * as a ResultTooLarge error; a results request cannot multiply one result by repeating its id, nor ask for
 * more ids or bytes than one reply holds (the SDK follows the pages); a task names its function instead of
 * carrying its own copy of the source; every route caps its request body, and the task batch is capped with
 * a 413 naming the limit (the SDK splits its batches to fit).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { connect } from 'node:net';
import { ServiceError } from '../../src/sdk/client.js';
import type { RunningService } from '../../src/service/api.js';
import { RemoteError } from '../../src/protocol/payload.js';
import { PgStore } from '../../src/service/store/index.js';
import { FakeEndpoint, removeFakeEndpointDirs } from '../helpers/fake-endpoint.js';
import { addUser, inProcessService, tmpDir, type TestUser } from './harness.js';

test.after(() => removeFakeEndpointDirs());

async function endpoint(t: TestContext, s: RunningService, user: TestUser): Promise<FakeEndpoint> {
  const ep = await FakeEndpoint.start(s.url, user.token, { name: `${user.name}-ep` });
  t.after(() => ep.close());
  return ep;
}

/** Raw HTTP with the body as given (a string is sent as is), answering the status and the body's size. */
async function raw(url: string, token: string, method: string, path: string, body: string): Promise<{ status: number; bytes: number; json: Record<string, unknown> }> {
  const r = await fetch(url + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
  const text = await r.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON
  }
  return { status: r.status, bytes: Buffer.byteLength(text), json };
}

/** One HTTP/1.1 request over a raw socket that writes its whole body before it reads anything, as many clients do. */
function writeAllThenRead(url: string, head: string, body: Buffer): Promise<{ written: boolean; answer: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let answer = '';
    let written = false;
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('error', () => resolve({ written, answer }));
    socket.on('close', () => resolve({ written, answer }));
    socket.write(head);
    socket.write(body, (err) => {
      written = !err;
      // The answer, then the connection is kept (the next request on it is answered too).
      if (written) socket.end('GET /v1/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    });
  });
}

test('a body over the limit is answered 413 even to a client that sends it all before reading (no reset)', async (t) => {
  // Before: fastify closed the connection at once after the 413 with the body unread, so the kernel reset it
  // and a client still writing lost the answer (EPIPE/ECONNRESET, seen from the SDK and undici). Now the
  // service reads and drops the rest of an announced body (up to lingerBodyBytes) and keeps the connection.
  const s = await inProcessService(t, {});
  const alice = await addUser(s, 'alice');
  const body = Buffer.alloc(24 * 1024 * 1024, 'a');
  const head = `POST /v1/groups HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${alice.token}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
  const r = await writeAllThenRead(s.url, head, body);
  assert.ok(r.written, `the body could not be written: the connection was reset (answer so far: ${JSON.stringify(r.answer.slice(0, 120))})`);
  assert.match(r.answer, /^HTTP\/1\.1 413 /, r.answer.slice(0, 200));
  assert.match(r.answer, /BODY_TOO_LARGE/);
  assert.equal(r.answer.match(/HTTP\/1\.1 /g)?.length, 2, 'the connection served the next request: ' + r.answer.slice(-200));
  // The SDK hears the 413 and its limit, not "cannot reach the service".
  const err = await alice.sdk.registerFunction(`() => 1 /* ${'b'.repeat(20 * 1024 * 1024)} */`, { name: 'huge' }).catch((e: unknown) => e);
  assert.ok(err instanceof ServiceError && err.status === 413, String(err));
});

test("a result over the service's limit is stored as ResultTooLarge, whatever the endpoint sends", async (t) => {
  const limit = 1_000_000;
  const s = await inProcessService(t, { maxResultBytes: limit });
  const alice = await addUser(s, 'alice');
  // The fake endpoint applies no limit of its own: it is an endpoint whose owner removed the worker's check.
  const ep = await endpoint(t, s, alice);
  const text = await alice.sdk.registerFunction((n: number) => 'x'.repeat(n), { name: 'text' });
  const big = await alice.sdk.run(ep.id, text, 2_000_000);
  await assert.rejects(alice.sdk.getResult(big, { waitMs: 30_000 }), (err: unknown) => {
    assert.ok(err instanceof RemoteError, `expected a RemoteError, got ${String(err)}`);
    assert.equal(err.remoteType, 'ResultTooLarge');
    assert.match(err.message, new RegExp(`over the service's limit of ${limit} bytes`));
    return true;
  });
  // A result under the limit arrives whole, after the refused one.
  assert.equal((await alice.sdk.getResult<string>(await alice.sdk.run(ep.id, text, 900_000), { waitMs: 30_000 })).length, 900_000);
});

test('a results request names each task once, at most maxResultIds ids, and its reply stays under maxReplyBytes', async (t) => {
  const s = await inProcessService(t, { maxReplyBytes: 1_000_000, maxResultIds: 50 });
  const alice = await addUser(s, 'alice');
  const ep = await endpoint(t, s, alice);
  const text = await alice.sdk.registerFunction((n: number) => 'y'.repeat(n), { name: 'text' });
  const one = await alice.sdk.run(ep.id, text, 300_000);
  await alice.sdk.getResult(one, { waitMs: 30_000 });

  // The same id 40 times: one result in the reply, not 40 copies of it.
  const repeated = await raw(s.url, alice.token, 'POST', '/v1/tasks/results', JSON.stringify({ ids: Array(40).fill(one) }));
  assert.equal(repeated.status, 200, JSON.stringify(repeated.json).slice(0, 300));
  assert.equal((repeated.json.results as unknown[]).length, 1, 'one result per distinct id');
  assert.ok(repeated.bytes < 1_000_000, `the reply is ${repeated.bytes} bytes`);

  // More distinct ids than one call takes: 413 naming the limit.
  const ids = Array.from({ length: 51 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
  const tooMany = await raw(s.url, alice.token, 'POST', '/v1/tasks/results', JSON.stringify({ ids }));
  assert.equal(tooMany.status, 413, JSON.stringify(tooMany.json));
  assert.equal(tooMany.json.code, 'TOO_MANY_IDS');
  assert.match(String(tooMany.json.message), /at most 50 ids/);

  // Ten results of 300 kB: one reply holds what fits in 1 MB and names the rest; the SDK follows.
  const batch = alice.sdk.createBatch();
  for (let i = 0; i < 10; i++) batch.add(ep.id, text, 300_000 + i);
  const taskIds = await alice.sdk.batchRun(batch);
  const results = await alice.sdk.getBatchResults<string>(taskIds, { waitMs: 30_000 });
  assert.deepEqual(results.map((r) => r.value?.length), Array.from({ length: 10 }, (_, i) => 300_000 + i));
  const page = await raw(s.url, alice.token, 'POST', '/v1/tasks/results', JSON.stringify({ ids: taskIds }));
  assert.equal(page.status, 200);
  assert.ok(page.bytes < 1_000_000 * 1.5, `a reply of ${page.bytes} bytes for a 1 MB cap`);
  const got = page.json.results as Array<{ taskId: string; result?: string }>;
  assert.ok(got.length >= 1 && got.length < 10, `${got.length} results in one page`);
  assert.deepEqual([...got.map((r) => r.taskId), ...(page.json.remaining as string[])], taskIds, 'the page and the ids left make the request');
});

test("tasks refer to their function: 50 tasks of a 1 MB function do not store 50 copies of it", async (t) => {
  const home = tmpDir('limits');
  const s = await inProcessService(t, { home });
  const alice = await addUser(s, 'alice');
  const ep = await endpoint(t, s, alice);
  const padding = 'z'.repeat(1_000_000 - 200);
  const fn = await alice.sdk.registerFunction(`(x) => x + ${JSON.stringify(padding)}.length`, { name: 'big' });
  const batch = alice.sdk.createBatch();
  for (let i = 0; i < 50; i++) batch.add(ep.id, fn, i);
  const results = await alice.sdk.getBatchResults<number>(await alice.sdk.batchRun(batch), { waitMs: 60_000 });
  assert.deepEqual(results.map((r) => r.value), Array.from({ length: 50 }, (_, i) => i + padding.length));
  let stored: number;
  if (s.store instanceof PgStore) {
    stored = Number((await s.store.pool.query('SELECT COALESCE(SUM(octet_length(payload)), 0) AS n FROM task_payloads')).rows[0].n);
  } else {
    const db = new Database(join(home, 'service.db'), { readonly: true, fileMustExist: true });
    t.after(() => db.close());
    stored = (db.prepare('SELECT COALESCE(SUM(LENGTH(payload)), 0) AS n FROM task_payloads').get() as { n: number }).n;
  }
  assert.ok(stored < 1_000_000, `the 50 task payloads take ${stored} bytes`);
});

test('request bodies are capped on every route; a task batch over the limit gets 413 naming it', async (t) => {
  const s = await inProcessService(t, { maxBatch: 100 });
  const alice = await addUser(s, 'alice');
  const ep = await endpoint(t, s, alice);
  const fn = await alice.sdk.registerFunction((x: number) => x + 1, { name: 'inc' });

  // 2 MB bodies on routes that need a few hundred bytes.
  const filler = 'a'.repeat(2 * 1024 * 1024);
  for (const [method, path] of [
    ['POST', '/v1/groups'],
    ['POST', '/v1/endpoints'],
    ['POST', '/v1/tasks/results'],
    ['POST', `/v1/endpoints/${ep.id}/stop`],
  ]) {
    const r = await raw(s.url, alice.token, method, path, JSON.stringify({ name: filler, ids: [], filler }));
    assert.equal(r.status, 413, `${method} ${path}: ${JSON.stringify(r.json).slice(0, 200)}`);
    assert.match(String(r.json.message), /bytes/, `${method} ${path} names the limit`);
  }
  // A function's source may be 1M characters, so its route takes more, but not 100 MB.
  const huge = await raw(s.url, alice.token, 'POST', '/v1/functions', JSON.stringify({ name: 'f', source: 'b'.repeat(20 * 1024 * 1024) }));
  assert.equal(huge.status, 413, JSON.stringify(huge.json).slice(0, 200));

  // More tasks than a batch takes: 413, with the limit in the message and the body.
  const tasks = Array.from({ length: 101 }, () => ({ endpointId: ep.id, functionId: fn, args: '' }));
  const r = await raw(s.url, alice.token, 'POST', '/v1/tasks', JSON.stringify({ tasks }));
  assert.equal(r.status, 413, JSON.stringify(r.json).slice(0, 300));
  assert.equal(r.json.code, 'TOO_MANY_TASKS');
  assert.equal(r.json.limit, 100);
  assert.match(String(r.json.message), /at most 100 tasks/);
  assert.equal(await s.store.countQueued(ep.id), 0, 'nothing of the refused batch was queued');

  // The SDK splits a bigger batch to the limit the service names.
  const batch = alice.sdk.createBatch();
  for (let i = 0; i < 250; i++) batch.add(ep.id, fn, i);
  const results = await alice.sdk.getBatchResults<number>(await alice.sdk.batchRun(batch), { waitMs: 30_000 });
  assert.deepEqual(results.map((x) => x.value), Array.from({ length: 250 }, (_, i) => i + 1));
});
