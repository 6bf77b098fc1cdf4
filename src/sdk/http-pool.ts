/**
 * The SDK's HTTP: JSON requests to one service origin over kept-alive connections (plain or TLS), through
 * undici's connection pool (the library behind Node's own fetch; llhttp parser, one write per request).
 *
 * Why not node:http: a single task's round trip (`client.call`) is mostly HTTP outside the engine, and on a
 * 2-vCPU machine node:http's client machinery (ClientRequest, Agent bookkeeping, IncomingMessage streams) cost
 * 0.2-0.3 ms a call more (issue 14: service-only call p50 1.25 → 0.93 ms with a lean client; GET round trip
 * p50 0.070 ms node:http, 0.055 undici, 0.048 a hand-written client, which we did not keep).
 *
 * What node:http's keep-alive agent gave us is kept: idle connections are unref'd by undici (they never hold a
 * CLI open), and the server's `Keep-Alive: timeout` is respected; a request that fails on a reused connection
 * before its answer began (the server closed it meanwhile) is sent once more on a new one when the caller
 * allows it (`resend`; never for a submission that could then be stored twice).
 */
import type { Dispatcher, Pool } from 'undici';

/** A whole answer: status and body text. */
export interface HttpAnswer {
  status: number;
  text: string;
}

export interface HttpPoolOptions {
  /** The service origin, `http://host:port` or `https://host:port` (a path is the caller's). */
  origin: URL;
  /** CA certificates trusted for https (else Node's defaults, NODE_EXTRA_CA_CERTS included). */
  ca?: Buffer;
}

/** Connections kept per client (a burst of concurrent long-polls, e.g. getBatchResults' slices). */
const CONNECTIONS = 32;

/** Socket errors that end a request before any answer; `bytesRead` > 0 means the connection had served earlier ones. */
const RESET_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

/**
 * undici is loaded at the first request, not with this module: a profile (config.ts) imports funcx-endpoint,
 * whose index carries the SDK, and tsx loads a profile's imports in a namespace of its own; undici's index
 * evaluated there a second time throws (`Illegal constructor`, its CacheStorage) and the profile fails to load.
 */
let undici: Promise<typeof import('undici')> | undefined;

export class HttpPool {
  private pool: Promise<Pool> | undefined;
  private closed = false;

  /** `options.origin` is http: or https: (the client's checkServiceUrl). */
  constructor(private readonly options: HttpPoolOptions) {}

  private connections(): Promise<Pool> {
    this.pool ??= (undici ??= import('undici')).then(({ Pool }) => new Pool(this.options.origin.origin, { connections: CONNECTIONS, ...(this.options.ca ? { connect: { ca: this.options.ca } } : {}) }));
    return this.pool;
  }

  /**
   * Send one request; `path` starts with `/`. Rejects with an Error whose code says why: ECONNREFUSED,
   * ECONNRESET (the connection closed before or during the answer), ETIMEDOUT (nothing for `timeoutMs`)...
   */
  async request(method: string, path: string, headers: Record<string, string>, body: string | undefined, timeoutMs: number, resend = true): Promise<HttpAnswer> {
    if (this.closed) throw Object.assign(new Error('the client is closed'), { code: 'ECONNRESET' });
    const pool = await this.connections();
    let answer: Dispatcher.ResponseData;
    try {
      answer = await pool.request({ method: method as Dispatcher.HttpMethod, path, headers, body, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { socket?: { bytesRead?: number } };
      // Before any answer, on a connection that had carried earlier ones: the server closed it meanwhile.
      if (resend && RESET_CODES.has(e.code ?? '') && (e.socket?.bytesRead ?? 0) > 0) return this.request(method, path, headers, body, timeoutMs, false);
      throw plain(e, timeoutMs);
    }
    try {
      return { status: answer.statusCode, text: await answer.body.text() };
    } catch (err) {
      throw plain(err as NodeJS.ErrnoException, timeoutMs); // the answer began: never sent again
    }
  }

  /** Close the pool's connections (those in use once their answers are read). Safe to call again. */
  async close(): Promise<void> {
    this.closed = true;
    const pool = await this.pool;
    if (pool && !pool.closed) await pool.close();
  }
}

/** undici's error codes as the socket ones callers know (ETIMEDOUT, ECONNRESET), the message kept. */
function plain(err: NodeJS.ErrnoException, timeoutMs: number): NodeJS.ErrnoException {
  if (err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_BODY_TIMEOUT') return Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
  if (err.code === 'UND_ERR_SOCKET') return Object.assign(new Error(`the connection closed: ${err.message}`), { code: 'ECONNRESET' });
  return err;
}
