/**
 * The SDK's HTTP/1.1 client: JSON requests to one service origin over kept-alive connections (plain or TLS),
 * one request at a time per connection.
 *
 * Why not node:http: a single task's round trip (`client.call`) is mostly HTTP outside the engine, and on a
 * 2-vCPU machine node:http's client machinery (ClientRequest, Agent bookkeeping, IncomingMessage streams) cost
 * ~0.2-0.5 ms a request under load, of a 2.5-3 ms round trip (issue 14, e2e hop trace). Here a request is one
 * write of head and body, and an answer is parsed from the bytes as they come (Content-Length, chunked, or
 * until the connection closes), resolving in the event-loop turn that read its last byte.
 *
 * What node:http's keep-alive agent did is kept: idle connections are unref'd (they never hold a CLI open) and
 * dropped when the server closes them; a request that fails on a reused connection before any answer byte
 * (the server closed it meanwhile) is sent once more on a new one when the caller allows (`resend`).
 */
import net from 'node:net';
import tls from 'node:tls';

/** A whole answer: status and body text. */
export interface HttpAnswer {
  status: number;
  text: string;
}

/** Idle connections kept per client; more (after a burst of concurrent requests, e.g. getBatchResults' slices) are closed. */
const MAX_IDLE = 32;
/** A connection the server said it keeps `timeout=N` s is not reused within this margin of N. */
const KEEP_ALIVE_MARGIN_MS = 1000;
const CRLF_CRLF = Buffer.from('\r\n\r\n');

type Socket = net.Socket | tls.TLSSocket;

interface Idle {
  socket: Socket;
  /** Not reused after this (the server's Keep-Alive timeout, less a margin). */
  expires: number;
  /** Drops the connection from the pool when it closes while idle. */
  onGone: () => void;
}

export interface KeepAliveHttpOptions {
  /** The service origin, `http://host:port` or `https://host:port`. */
  origin: URL;
  /** CA certificates trusted for https (else Node's defaults, NODE_EXTRA_CA_CERTS included). */
  ca?: Buffer;
}

export class KeepAliveHttp {
  private readonly idle: Idle[] = [];
  private readonly secure: boolean;
  private readonly host: string;
  private readonly port: number;
  private readonly hostHeader: string;

  constructor(private readonly options: KeepAliveHttpOptions) {
    const { origin } = options;
    this.secure = origin.protocol === 'https:';
    if (!this.secure && origin.protocol !== 'http:') throw new TypeError(`${origin.href}: only http: and https: service URLs are supported`);
    this.host = origin.hostname.replace(/^\[|\]$/g, '');
    this.port = Number(origin.port) || (this.secure ? 443 : 80);
    this.hostHeader = origin.host;
  }

  /**
   * Send one request; `path` starts with `/`. Rejects with the socket's error (code ECONNREFUSED, ECONNRESET,
   * ETIMEDOUT when nothing came for `timeoutMs`...) or a ProtocolError-like Error for an answer that is not HTTP.
   */
  request(method: string, path: string, headers: Record<string, string>, body: string | undefined, timeoutMs: number, resend = true): Promise<HttpAnswer> {
    // What node:http refused too: a path or header value that would end the line early (header injection).
    if (/[\s\0]/.test(path)) throw new TypeError(`the request path ${JSON.stringify(path)} has white space or control characters`);
    let head = `${method} ${path} HTTP/1.1\r\nhost: ${this.hostHeader}\r\n`;
    for (const name in headers) {
      const value = headers[name];
      if (/[\r\n\0]/.test(value)) throw new TypeError(`the ${name} header has a line break or NUL in it`);
      head += `${name}: ${value}\r\n`;
    }
    const payload = body === undefined ? undefined : Buffer.from(body, 'utf8');
    if (payload !== undefined || method !== 'GET') head += `content-length: ${payload?.length ?? 0}\r\n`;
    const bytes = payload === undefined ? Buffer.from(head + '\r\n', 'latin1') : Buffer.concat([Buffer.from(head + '\r\n', 'latin1'), payload]);
    return this.exchange(bytes, timeoutMs, resend);
  }

  /** Close every idle connection (the ones in use close when their answer is read). */
  close(): void {
    for (const c of this.idle.splice(0)) {
      c.socket.off('close', c.onGone);
      c.socket.destroy();
    }
  }

  private exchange(bytes: Buffer, timeoutMs: number, resend: boolean): Promise<HttpAnswer> {
    const reused = this.takeIdle();
    const socket = reused ?? this.connect();
    return new Promise<HttpAnswer>((resolve, reject) => {
      const parser = new AnswerParser();
      let settled = false;
      let written = false;
      const finish = (err: NodeJS.ErrnoException | undefined, answer?: HttpAnswer) => {
        if (settled) return;
        settled = true;
        socket.off('data', onData);
        socket.off('error', onError);
        socket.off('close', onClose);
        socket.off('timeout', onTimeout);
        socket.setTimeout(0);
        if (err) {
          socket.destroy();
          // A reused connection the server closed meanwhile (it restarted, or its keep-alive ran out): the request
          // never reached it. Sent once more on a new connection, where the caller allows it.
          if (reused && resend && !parser.started && err.code === 'ECONNRESET') resolve(this.exchange(bytes, timeoutMs, false));
          else reject(err);
          return;
        }
        // An answer before the whole request was written (a 413 to a body over the limit): the server may still
        // be reading or discarding the rest, so the connection is not reused.
        if (parser.keepAlive && written) this.release(socket, parser.keepAliveMs);
        else socket.destroy();
        resolve(answer!);
      };
      const onData = (chunk: Buffer) => {
        let answer: HttpAnswer | undefined;
        try {
          answer = parser.push(chunk);
        } catch (err) {
          return finish(err as Error);
        }
        if (answer) finish(undefined, answer);
      };
      const onError = (err: NodeJS.ErrnoException) => finish(err);
      const onClose = () => {
        // A body without a length ends with the connection.
        const answer = parser.end();
        if (answer) finish(undefined, answer);
        else finish(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      };
      const onTimeout = () => finish(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      socket.on('data', onData);
      socket.on('error', onError);
      socket.on('close', onClose);
      socket.on('timeout', onTimeout);
      socket.setTimeout(timeoutMs);
      socket.ref();
      socket.write(bytes, () => (written = true));
    });
  }

  private connect(): Socket {
    const socket = this.secure
      ? tls.connect({ host: this.host, port: this.port, ca: this.options.ca, servername: net.isIP(this.host) ? undefined : this.host })
      : net.connect({ host: this.host, port: this.port });
    socket.setNoDelay(true);
    return socket;
  }

  /** An idle connection still open and within its keep-alive, or undefined. */
  private takeIdle(): Socket | undefined {
    const now = Date.now();
    for (let c = this.idle.pop(); c; c = this.idle.pop()) {
      c.socket.off('close', c.onGone);
      c.socket.off('error', c.onGone);
      if (c.expires > now && !c.socket.destroyed && c.socket.readyState === 'open') return c.socket;
      c.socket.destroy();
    }
    return undefined;
  }

  private release(socket: Socket, keepAliveMs: number | undefined): void {
    if (this.idle.length >= MAX_IDLE || socket.destroyed) {
      socket.destroy();
      return;
    }
    const entry: Idle = {
      socket,
      expires: keepAliveMs === undefined ? Infinity : Date.now() + keepAliveMs - KEEP_ALIVE_MARGIN_MS,
      onGone: () => {
        const i = this.idle.indexOf(entry);
        if (i >= 0) this.idle.splice(i, 1);
        socket.destroy();
      },
    };
    // Bytes while idle (there is no request) or the server's close: the connection is done.
    socket.once('close', entry.onGone);
    socket.once('error', entry.onGone);
    socket.unref();
    this.idle.push(entry);
  }
}

type Phase = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'until-close' | 'done';

/** Reads one HTTP/1.x answer from the bytes of a connection (1xx interim answers are skipped). */
export class AnswerParser {
  /** Some byte of an answer came (a retry could then run the request twice). */
  started = false;
  /** The connection may carry the next request. */
  keepAlive = false;
  /** The server's Keep-Alive timeout, when it named one. */
  keepAliveMs: number | undefined;
  private phase: Phase = 'head';
  private pending: Buffer = Buffer.alloc(0);
  private status = 0;
  private remaining = 0;
  private readonly body: Buffer[] = [];

  /** Feed bytes; returns the answer once complete. Throws on bytes that are not an HTTP answer. */
  push(chunk: Buffer): HttpAnswer | undefined {
    this.started = true;
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = Buffer.alloc(0);
    for (;;) {
      switch (this.phase) {
        case 'head': {
          const end = buf.indexOf(CRLF_CRLF);
          if (end < 0) return this.keep(buf, 64 * 1024, 'the answer\'s head');
          this.readHead(buf.toString('latin1', 0, end));
          buf = buf.subarray(end + 4);
          continue;
        }
        case 'length': {
          const take = Math.min(this.remaining, buf.length);
          if (take > 0) this.body.push(buf.subarray(0, take));
          this.remaining -= take;
          buf = buf.subarray(take);
          if (this.remaining > 0) return undefined;
          this.phase = 'done';
          continue;
        }
        case 'chunk-size': {
          const end = buf.indexOf('\r\n');
          if (end < 0) return this.keep(buf, 1024, 'a chunk size');
          const size = parseInt(buf.toString('latin1', 0, end).split(';')[0].trim(), 16);
          if (!Number.isFinite(size) || size < 0) throw new Error('the service\'s answer has a bad chunk size');
          buf = buf.subarray(end + 2);
          this.remaining = size;
          this.phase = size === 0 ? 'trailers' : 'chunk-data';
          continue;
        }
        case 'chunk-data': {
          const take = Math.min(this.remaining, buf.length);
          if (take > 0) this.body.push(buf.subarray(0, take));
          this.remaining -= take;
          buf = buf.subarray(take);
          if (this.remaining > 0) return undefined;
          this.phase = 'chunk-end';
          continue;
        }
        case 'chunk-end':
          if (buf.length < 2) return this.keep(buf, 2, 'a chunk end');
          buf = buf.subarray(2);
          this.phase = 'chunk-size';
          continue;
        case 'trailers': {
          // Trailer lines, then an empty line.
          const end = buf.indexOf('\r\n');
          if (end < 0) return this.keep(buf, 64 * 1024, 'the answer\'s trailers');
          buf = buf.subarray(end + 2);
          if (end === 0) this.phase = 'done';
          continue;
        }
        case 'until-close':
          if (buf.length > 0) this.body.push(buf);
          return undefined;
        case 'done':
          // Nothing may follow an answer: no request was pipelined behind it.
          if (buf.length > 0) this.keepAlive = false;
          return { status: this.status, text: Buffer.concat(this.body).toString('utf8') };
      }
    }
  }

  /** The connection closed: the answer, if it was one that ends with the connection. */
  end(): HttpAnswer | undefined {
    if (this.phase !== 'until-close') return undefined;
    this.phase = 'done';
    return { status: this.status, text: Buffer.concat(this.body).toString('utf8') };
  }

  private keep(buf: Buffer, max: number, what: string): undefined {
    if (buf.length > max) throw new Error(`the service's answer has ${what} longer than ${max} bytes`);
    this.pending = Buffer.from(buf);
    return undefined;
  }

  private readHead(head: string): void {
    const lines = head.split('\r\n');
    const m = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0]);
    if (!m) throw new Error(`the service answered something that is not HTTP/1.x (${JSON.stringify(lines[0].slice(0, 40))})`);
    const status = Number(m[2]);
    let length: number | undefined;
    let chunked = false;
    let connection = '';
    this.keepAliveMs = undefined;
    for (let i = 1; i < lines.length; i++) {
      const colon = lines[i].indexOf(':');
      if (colon <= 0) continue;
      const name = lines[i].slice(0, colon).trim().toLowerCase();
      const value = lines[i].slice(colon + 1).trim();
      if (name === 'content-length') length = Number(value);
      else if (name === 'transfer-encoding') chunked = /(^|,)\s*chunked\s*$/i.test(value);
      else if (name === 'connection') connection = value.toLowerCase();
      else if (name === 'keep-alive') {
        const t = /timeout=(\d+)/i.exec(value);
        if (t) this.keepAliveMs = Number(t[1]) * 1000;
      }
    }
    // 1xx: an interim answer; the real one follows.
    if (status >= 100 && status < 200) return;
    this.status = status;
    this.started = true;
    this.keepAlive = m[1] === '1' ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
    if (status === 204 || status === 304) {
      this.phase = 'done';
    } else if (chunked) {
      this.phase = 'chunk-size';
    } else if (length !== undefined) {
      if (!Number.isInteger(length) || length < 0) throw new Error('the service\'s answer has a bad Content-Length');
      this.remaining = length;
      this.phase = length === 0 ? 'done' : 'length';
    } else {
      this.phase = 'until-close';
      this.keepAlive = false;
    }
  }
}
