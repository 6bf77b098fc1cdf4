/**
 * One HTTP call from the endpoint's side (init, registration) to the funcX service, with the errors a user
 * can act on: service unreachable (naming the URL), or an answer that is not JSON (not our service).
 */
import { FuncxError } from '../../errors.js';
import { PROTOCOL_VERSION } from '../../protocol/forwarder-messages.js';
import { checkServiceUrl } from '../../sdk/client.js';

export interface ServiceAnswer {
  url: string;
  status: number;
  ok: boolean;
  statusText: string;
  /** The raw body, for messages when it is not JSON. */
  text: string;
  /** The JSON body, or {} when there is none or it is not JSON. */
  body: Record<string, unknown>;
  /** The service's own `message`, else the start of the body, else the status text. */
  message: string;
}

export async function callService(
  serviceUrl: string,
  path: string,
  options: { token: string; method?: 'GET' | 'POST' | 'DELETE'; json?: unknown; timeoutMs: number; signal?: AbortSignal },
): Promise<ServiceAnswer> {
  checkServiceUrl(serviceUrl);
  const url = `${serviceUrl.replace(/\/+$/, '')}${path}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: options.method ?? 'GET',
      headers: {
        authorization: `Bearer ${options.token}`,
        'x-funcx-protocol': String(PROTOCOL_VERSION),
        ...(options.json === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: options.json === undefined ? undefined : JSON.stringify(options.json),
      // The caller's signal (a daemon told to stop) ends the call at once, not at the timeout.
      signal: options.signal ? AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs)]) : AbortSignal.timeout(options.timeoutMs),
    });
  } catch (err) {
    throw unreachable(serviceUrl, err, options.timeoutMs);
  }
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    // Not our service (a proxy's HTML page, another program on the port): callers say so.
  }
  const message = typeof body.message === 'string' ? body.message : text.slice(0, 200) || response.statusText;
  return { url, status: response.status, ok: response.ok, statusText: response.statusText, text, body, message };
}

/** A clear error for a service that cannot be reached (refused, unknown host, timeout). */
export function unreachable(serviceUrl: string, err: unknown, timeoutMs: number): FuncxError {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const why =
    e.name === 'TimeoutError' || e.name === 'AbortError'
      ? `no answer within ${timeoutMs} ms`
      : e.cause?.code === 'ECONNREFUSED'
        ? 'connection refused (is it running?)'
        : (e.cause?.message ?? e.message);
  return new FuncxError('SERVICE_UNREACHABLE', `cannot reach the funcX service at ${serviceUrl}: ${why}`, [
    'start it with `funcx-service start`, or check the service URL (FUNCX_SERVICE_URL or the global config)',
  ]);
}
