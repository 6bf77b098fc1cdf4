import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { AnswerParser, KeepAliveHttp } from '../../src/sdk/keep-alive-http.js';
import { until } from '../helpers/wait.js';

const answer = (body: string, extra = ''): string => `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n${extra}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

/** Feed `bytes` to a parser `size` bytes at a time; the answer, and whether it completed only at the last byte. */
function parse(bytes: string, size: number): { answer: ReturnType<AnswerParser['push']>; parser: AnswerParser; early: boolean } {
  const parser = new AnswerParser();
  const buf = Buffer.from(bytes, 'utf8');
  let result: ReturnType<AnswerParser['push']>;
  let early = false;
  for (let i = 0; i < buf.length; i += size) {
    result = parser.push(buf.subarray(i, i + size));
    if (result && i + size < buf.length) early = true;
  }
  return { answer: result, parser, early };
}

test('answers are read whatever the chunking: Content-Length, chunked with extensions and trailers, 1xx, 204', () => {
  for (const size of [1, 2, 7, 1000]) {
    const plain = parse(answer('{"a":"é"}'), size);
    assert.deepEqual(plain.answer, { status: 200, text: '{"a":"é"}' }, `content-length, ${size}-byte chunks`);
    assert.equal(plain.early, false);
    assert.equal(plain.parser.keepAlive, true);
    const chunked = parse('HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\n{"a"\r\n3\r\n:1}\r\n0\r\nx-trailer: 1\r\n\r\n', size);
    assert.deepEqual(chunked.answer, { status: 201, text: '{"a":1}' }, `chunked, ${size}-byte chunks`);
    assert.equal(chunked.early, false);
    const interim = parse('HTTP/1.1 100 Continue\r\n\r\n' + answer('{}'), size);
    assert.deepEqual(interim.answer, { status: 200, text: '{}' }, 'a 1xx answer is skipped');
    assert.deepEqual(parse('HTTP/1.1 204 No Content\r\n\r\n', size).answer, { status: 204, text: '' });
  }
});

test('what the connection may do next: close, HTTP/1.0, a body until close, the server\'s keep-alive timeout', () => {
  assert.equal(parse(answer('{}', 'connection: close\r\n'), 100).parser.keepAlive, false);
  assert.equal(parse(answer('{}').replace('HTTP/1.1', 'HTTP/1.0'), 100).parser.keepAlive, false);
  assert.equal(parse(answer('{}', 'connection: keep-alive\r\n').replace('HTTP/1.1', 'HTTP/1.0'), 100).parser.keepAlive, true);
  assert.equal(parse(answer('{}', 'keep-alive: timeout=72\r\n'), 100).parser.keepAliveMs, 72_000);
  const untilClose = new AnswerParser();
  assert.equal(untilClose.push(Buffer.from('HTTP/1.1 200 OK\r\n\r\n{"a"')), undefined);
  assert.equal(untilClose.push(Buffer.from(':1}')), undefined);
  assert.deepEqual(untilClose.end(), { status: 200, text: '{"a":1}' });
  assert.equal(untilClose.keepAlive, false);
  assert.equal(new AnswerParser().end(), undefined, 'a connection closed before any answer has none');
  assert.throws(() => new AnswerParser().push(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n')), /not HTTP\/1\.x/);
  assert.throws(() => parse('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n', 100), /bad chunk size/);
});

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
  return { url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`), seen, server };
}

test('sequential requests share one connection; the head carries host, headers and the body\'s length', async (t) => {
  const s = await rawServer(t, (socket, _n, body) => socket.write(answer(JSON.stringify({ echo: body }))));
  const http = new KeepAliveHttp({ origin: s.url });
  t.after(() => http.close());
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(await http.request('POST', '/v1/tasks?wait=1', { authorization: 'Bearer fx_a' }, `{"i":${i}}`, 5000), { status: 200, text: `{"echo":"{\\"i\\":${i}}"}` });
  }
  assert.deepEqual(await http.request('GET', '/v1/whoami', {}, undefined, 5000), { status: 200, text: '{"echo":""}' });
  assert.equal(s.seen.connections, 1);
  assert.match(s.seen.heads[0], /^POST \/v1\/tasks\?wait=1 HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\nauthorization: Bearer fx_a\r\ncontent-length: 7$/);
  assert.doesNotMatch(s.seen.heads[3], /content-length/, 'a GET without a body says nothing of one');
  await assert.rejects(async () => http.request('GET', '/v1/x', { authorization: 'Bearer a\r\nx-evil: 1' }, undefined, 5000), /line break/);
  await assert.rejects(async () => http.request('GET', '/v1/x y', {}, undefined, 5000), /white space/);
});

test('a reused connection the server dropped before answering: sent once more only where the caller allows it', async (t) => {
  // Each connection answers its first request and drops the second without a byte (a restarted service).
  const s = await rawServer(t, (socket, n) => (n === 1 ? socket.write(answer('{}')) : socket.destroy()));
  const http = new KeepAliveHttp({ origin: s.url });
  t.after(() => http.close());
  await http.request('GET', '/a', {}, undefined, 5000);
  assert.deepEqual(await http.request('GET', '/b', {}, undefined, 5000), { status: 200, text: '{}' }, 'sent again on a new connection');
  assert.deepEqual([s.seen.connections, s.seen.requests], [2, 3]);
  await assert.rejects(http.request('POST', '/v1/tasks?wait=5', {}, '{}', 5000, false), { code: 'ECONNRESET' });
  assert.deepEqual([s.seen.connections, s.seen.requests], [2, 4], 'not sent twice');
});

test('no second send once an answer began, nor on a new connection; a silent server times out', async (t) => {
  const s = await rawServer(t, (socket, n, body) => {
    if (body === 'half') socket.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{"a');
    else if (body === 'silent') return;
    else if (n === 1) socket.write(answer('{}'));
  });
  const http = new KeepAliveHttp({ origin: s.url });
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
  const http = new KeepAliveHttp({ origin: s.url });
  t.after(() => http.close());
  await http.request('GET', '/a', {}, undefined, 5000);
  const closed = new Promise((r) => sockets[0].once('close', r));
  sockets[0].end();
  await closed;
  await until('the client to see the close', () => (http as unknown as { idle: unknown[] }).idle.length === 0);
  assert.deepEqual(await http.request('GET', '/b', {}, undefined, 5000), { status: 200, text: '{}' });
  assert.equal(s.seen.connections, 2);
});

test('a refused connection rejects with ECONNREFUSED', async () => {
  const free = net.createServer();
  await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
  const port = (free.address() as AddressInfo).port;
  await new Promise((r) => free.close(r));
  const http = new KeepAliveHttp({ origin: new URL(`http://127.0.0.1:${port}`) });
  await assert.rejects(http.request('GET', '/', {}, undefined, 5000), { code: 'ECONNREFUSED' });
});
