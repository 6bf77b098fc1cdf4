/**
 * The SDK's HTTP (http-pool.ts, undici's pool) against a raw server: connection reuse, the one re-send on a
 * reused connection that was dropped before answering (and only where the caller allows), timeouts, refused.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { HttpPool } from '../../src/sdk/http-pool.js';

const answer = (body: string, extra = ''): string => `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n${extra}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

/** A raw HTTP server: `onRequest(socket, n)` for the n-th request (1-based) of every connection. */
async function rawServer(t: TestContext, onRequest: (socket: net.Socket, n: number, body: string) => void) {
  const seen = { connections: 0, requests: 0, heads: [] as string[] };
  const open = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    seen.connections++;
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    let n = 0;
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        const body = buf.slice(end + 4, end + 4 + length);
        buf = buf.slice(end + 4 + length);
        seen.requests++;
        seen.heads.push(head);
        onRequest(socket, ++n, body);
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => {
    for (const socket of open) socket.destroy();
    server.close(() => r());
  }));
  return { url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`), seen, server, open };
}

test('sequential requests share one connection; the head carries host, headers and the body\'s length', async (t) => {
  const s = await rawServer(t, (socket, _n, body) => socket.write(answer(JSON.stringify({ echo: body }))));
  const http = new HttpPool({ origin: s.url });
  t.after(() => http.close());
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(await http.request('POST', '/v1/tasks?wait=1', { authorization: 'Bearer fx_a' }, `{"i":${i}}`, 5000), { status: 200, text: `{"echo":"{\\"i\\":${i}}"}` });
  }
  assert.deepEqual(await http.request('GET', '/v1/whoami', {}, undefined, 5000), { status: 200, text: '{"echo":""}' });
  assert.ok(s.seen.connections <= 2, `4 sequential requests took ${s.seen.connections} connections`);
  for (let i = 0; i < 6; i++) await http.request('GET', '/v1/whoami', {}, undefined, 5000);
  assert.ok(s.seen.connections <= 2, `10 sequential requests took ${s.seen.connections} connections`);
  assert.match(s.seen.heads[0], /^POST \/v1\/tasks\?wait=1 HTTP\/1\.1\r\n/);
  assert.match(s.seen.heads[0], /\r\nhost: 127\.0\.0\.1:\d+(\r\n|$)/i);
  assert.match(s.seen.heads[0], /\r\nauthorization: Bearer fx_a(\r\n|$)/i);
  assert.match(s.seen.heads[0], /\r\ncontent-length: 7(\r\n|$)/i);
  assert.doesNotMatch(s.seen.heads[3], /content-length/i, 'a GET without a body says nothing of one');
  await assert.rejects(async () => http.request('GET', '/v1/x', { authorization: 'Bearer a\r\nx-evil: 1' }, undefined, 5000), /header/i);
});

test('a reused connection the server dropped before answering: sent once more only where the caller allows it', async (t) => {
  // Each connection answers its first request; a later one is dropped without a byte, with every other
  // connection (a restarted service).
  const s: Awaited<ReturnType<typeof rawServer>> = await rawServer(t, (socket, n) => {
    if (n === 1) socket.write(answer('{}'));
    else for (const c of s.open) c.destroy();
  });
  const http = new HttpPool({ origin: s.url });
  t.after(() => http.close());
  // The pool may open a connection or two before it reuses one; every request is answered all the same.
  for (let i = 0; i < 6; i++) assert.deepEqual(await http.request('GET', `/${i}`, {}, undefined, 5000), { status: 200, text: '{}' }, `request ${i}`);
  assert.ok(s.seen.requests > 6, `some request met a reused connection and was sent again (${s.seen.requests} sent for 6)`);
  // Where sending twice could store a submission twice: the reset is the caller's.
  let refused: unknown;
  for (let i = 0; i < 6 && refused === undefined; i++) {
    const before = s.seen.requests;
    refused = await http.request('POST', '/v1/tasks?wait=5', {}, '{}', 5000, false).then(() => undefined, (err: unknown) => err);
    if (refused !== undefined) assert.equal(s.seen.requests, before + 1, 'not sent twice');
  }
  assert.equal((refused as NodeJS.ErrnoException | undefined)?.code, 'ECONNRESET');
});

test('no second send once an answer began, nor on a new connection; a silent server times out', async (t) => {
  const s = await rawServer(t, (socket, n, body) => {
    if (body === 'half') socket.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{"a');
    else if (body === 'silent') return;
    else if (n === 1) socket.write(answer('{}'));
  });
  const http = new HttpPool({ origin: s.url });
  t.after(() => http.close());
  await http.request('POST', '/a', {}, 'first', 5000);
  await assert.rejects(http.request('POST', '/b', {}, 'half', 5000), { code: 'ECONNRESET' });
  assert.equal(s.seen.requests, 2);
  await assert.rejects(http.request('POST', '/c', {}, 'silent', 200), { code: 'ETIMEDOUT', message: 'no answer within 200 ms' });
  assert.equal(s.seen.requests, 3);
});

test('an idle connection the server closes leaves the pool; the next request opens another', async (t) => {
  const sockets: net.Socket[] = [];
  const s = await rawServer(t, (socket) => (sockets.push(socket), socket.write(answer('{}'))));
  const http = new HttpPool({ origin: s.url });
  t.after(() => http.close());
  await http.request('GET', '/a', {}, undefined, 5000);
  const closed = new Promise((r) => sockets[0].once('close', r));
  sockets[0].end();
  await closed;
  // The server's socket closes once the client closed its side too: it saw the close.
  assert.deepEqual(await http.request('GET', '/b', {}, undefined, 5000), { status: 200, text: '{}' });
  assert.deepEqual([s.seen.connections, s.seen.requests], [2, 2], 'a new connection, and no request lost on the closed one');
});

test('a refused connection rejects with ECONNREFUSED', async () => {
  const free = net.createServer();
  await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
  const port = (free.address() as AddressInfo).port;
  await new Promise((r) => free.close(r));
  const http = new HttpPool({ origin: new URL(`http://127.0.0.1:${port}`) });
  await assert.rejects(http.request('GET', '/', {}, undefined, 5000), { code: 'ECONNREFUSED' });
});
