/**
 * Registering an endpoint with the web service: one HTTP call that returns the endpoint's id and where its
 * forwarder listens. Failures say what to do: service down, token refused, someone else's endpoint.
 */
import { FuncxError, ProtocolError } from '../errors.js';
import { PROTOCOL_VERSION, type ForwarderAddress } from '../protocol/forwarder-messages.js';
import { isZ85Key } from '../protocol/keys.js';

export interface RegisterRequest {
  /** The profile's name (e.g. "default"). */
  name: string;
  /** The id from a previous registration (endpoint.json); absent for a first registration. */
  endpointId?: string;
  /** The endpoint's CURVE public key (Z85): the only key its forwarder will let in. */
  publicKey: string;
  /** A group whose members may also send tasks to this endpoint. */
  group?: string;
}

export interface Registration {
  endpointId: string;
  forwarder: ForwarderAddress;
  protocol: number;
}

export interface RegisterOptions {
  /** Give up when the service has not answered by then. @default 10000 */
  timeoutMs?: number;
}

/** Register (or re-register) an endpoint. Throws FuncxError with code SERVICE_UNREACHABLE, UNAUTHORIZED, FORBIDDEN, PROTOCOL... */
export async function registerEndpoint(serviceUrl: string, token: string, request: RegisterRequest, options: RegisterOptions = {}): Promise<Registration> {
  const url = `${serviceUrl.replace(/\/+$/, '')}/v1/endpoints`;
  const timeoutMs = options.timeoutMs ?? 10_000;
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-funcx-protocol': String(PROTOCOL_VERSION) },
      body: JSON.stringify({ ...request, protocol: PROTOCOL_VERSION }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw unreachable(serviceUrl, err, timeoutMs);
  }
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    // Not our service (a proxy's HTML page, another program on the port): say so below.
  }
  const message = typeof body.message === 'string' ? body.message : text.slice(0, 200) || response.statusText;
  if (response.status === 401) {
    throw new FuncxError('UNAUTHORIZED', `the funcX service at ${serviceUrl} refused the token: ${message}`, [
      'set FUNCX_TOKEN or run `funcx-endpoint init` with a token from `funcx-service user add NAME`',
    ]);
  }
  if (response.status === 403) throw new FuncxError('FORBIDDEN', message);
  if (response.status === 400 && body.code === 'PROTOCOL_MISMATCH') throw new ProtocolError(message);
  if (!response.ok) throw new FuncxError('SERVICE_ERROR', `the funcX service at ${serviceUrl} answered ${response.status}: ${message}`);
  const forwarder = body.forwarder as ForwarderAddress | undefined;
  const ports = forwarder?.ports;
  if (
    typeof body.endpointId !== 'string' ||
    !forwarder ||
    typeof forwarder.host !== 'string' ||
    !isZ85Key(forwarder.publicKey) ||
    !ports ||
    ![ports.tasks, ports.results, ports.commands].every((p) => Number.isInteger(p) && p > 0 && p < 65536)
  ) {
    throw new ProtocolError(`the service at ${serviceUrl} answered the registration without an endpoint id and forwarder address`);
  }
  return { endpointId: body.endpointId, forwarder, protocol: typeof body.protocol === 'number' ? body.protocol : PROTOCOL_VERSION };
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
