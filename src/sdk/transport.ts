/**
 * The SDK's requests to the service: JSON through the kept-alive pool (http-pool.ts) with the token and the
 * protocol version, and the answers' errors as FuncxErrors (SERVICE_UNREACHABLE, ServiceError, ProtocolError).
 */
import { readFileSync } from 'node:fs';
import { FuncxError, ProtocolError } from '../errors.js';
import { PROTOCOL_VERSION } from '../protocol/messages.js';
import type { ErrorBody } from '../protocol/http.js';
import { HttpPool } from './http-pool.js';
import { checkServiceUrl, resolveCredentials, type FuncXClientOptions } from './client-options.js';
import { ServiceError } from './service-error.js';

/** One service, one token: every request of a FuncXClient goes through its transport. */
export class ServiceTransport {
  readonly serviceUrl: string;
  /** Replaced by `FuncXClient.rotateToken`. */
  token: string;
  private readonly timeoutMs: number;
  /** Kept-alive connections to the service (http-pool.ts, undici). */
  private readonly http: HttpPool;
  /** The service URL's path (a prefix behind a proxy), without its trailing slash. */
  private readonly basePath: string;

  constructor(options: FuncXClientOptions) {
    const { serviceUrl, token } = resolveCredentials(options);
    this.serviceUrl = serviceUrl;
    this.token = token;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    checkServiceUrl(serviceUrl, options.insecure ?? process.env.FUNCX_INSECURE === '1');
    let ca: Buffer | undefined;
    if (options.caFile) {
      try {
        ca = readFileSync(options.caFile);
      } catch (err) {
        throw new FuncxError('CONFIG', `cannot read the CA file ${options.caFile}: ${(err as Error).message}`);
      }
    }
    const url = new URL(serviceUrl); // checked above
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.http = new HttpPool({ origin: url, ca });
  }

  /** `resend`: send again once on a pooled connection reset before any answer (false where that could submit twice). */
  async request<T>(method: string, path: string, body?: unknown, extraTimeoutMs = 0, resend = true): Promise<T> {
    const timeoutMs = this.timeoutMs + extraTimeoutMs;
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, 'x-funcx-protocol': String(PROTOCOL_VERSION) };
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) headers['content-type'] = 'application/json';
    let response: { status: number; text: string };
    try {
      response = await this.http.request(method, this.basePath + path, headers, payload, timeoutMs, resend);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'ECONNREFUSED' ? 'connection refused (is it running?)' : e.message;
      throw new FuncxError('SERVICE_UNREACHABLE', `cannot reach the funcX service at ${this.serviceUrl}: ${why}`, ['start it with `funcx-service start`, or set FUNCX_SERVICE_URL']);
    }
    let parsed: (Partial<ErrorBody> & Record<string, unknown>) | undefined;
    try {
      parsed = response.text ? JSON.parse(response.text) : undefined;
    } catch {
      // Reported below.
    }
    if (response.status < 200 || response.status >= 300) {
      const message = typeof parsed?.message === 'string' ? parsed.message : `HTTP ${response.status}`;
      if (parsed?.code === 'PROTOCOL_MISMATCH') throw new ProtocolError(message);
      const { statusCode: _s, code: _c, message: _m, ...details } = parsed ?? {};
      throw new ServiceError(typeof parsed?.code === 'string' ? parsed.code : `HTTP_${response.status}`, message, response.status, details);
    }
    if (parsed === undefined) throw new ProtocolError(`the service at ${this.serviceUrl} answered ${method} ${path} with something that is not JSON`);
    return parsed as T;
  }
}
