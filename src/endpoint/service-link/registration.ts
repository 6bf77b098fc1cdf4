/**
 * Registering an endpoint with the web service: one HTTP call that returns the endpoint's id and where its
 * forwarder listens. Failures say what to do: service down, token refused, someone else's endpoint.
 */
import { FuncxError, ProtocolError } from '../../errors.js';
import { PROTOCOL_VERSION, type ForwarderAddress } from '../../protocol/forwarder-messages.js';
import { isZ85Key } from '../../protocol/keys.js';
import type { RegisterEndpointRequest, RegisterEndpointResponse } from '../../protocol/http.js';
import { callService } from './service-http.js';
import { checkForwarderPin } from './forwarder-pin.js';

/** The body of POST /v1/endpoints without `protocol` (added here): name, endpointId?, publicKey, group?. */
export type RegisterRequest = Omit<RegisterEndpointRequest, 'protocol'>;

/** The service's answer (protocol/http.ts), checked. */
export type Registration = RegisterEndpointResponse;

export type { EndpointMetadata } from '../../protocol/http.js';

export interface RegisterOptions {
  /** Give up when the service has not answered by then. @default 10000 */
  timeoutMs?: number;
  /** Pin the forwarder's key in this file on first use; refuse another key later (forwarder-pin.ts). */
  pinFile?: string;
  /** Abandon the call when this aborts (the daemon was told to stop while registering). @default none */
  signal?: AbortSignal;
}

/** Register (or re-register) an endpoint. Throws FuncxError with code SERVICE_UNREACHABLE, UNAUTHORIZED, FORBIDDEN, PROTOCOL... */
export async function registerEndpoint(serviceUrl: string, token: string, request: RegisterRequest, options: RegisterOptions = {}): Promise<Registration> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const { status, ok, body, message } = await callService(serviceUrl, '/v1/endpoints', {
    method: 'POST',
    token,
    json: { ...request, protocol: PROTOCOL_VERSION } satisfies RegisterEndpointRequest,
    timeoutMs,
    signal: options.signal,
  });
  if (status === 401) {
    throw new FuncxError('UNAUTHORIZED', `the funcX service at ${serviceUrl} refused the token: ${message}`, [
      'set FUNCX_TOKEN or run `funcx-endpoint init` with a token from `funcx-service user add NAME`',
    ]);
  }
  if ((status === 403 || status === 404) && request.group !== undefined && /group/i.test(message)) {
    throw new FuncxError('SHARED_WITH', `the profile's shared_with names group ${JSON.stringify(request.group)}, which the service refused: ${message}`, [
      'create the group (`funcx group create NAME`) or join it, or remove shared_with from the profile to run unshared',
    ]);
  }
  if (status === 403) throw new FuncxError('FORBIDDEN', message);
  if (status === 400 && body.code === 'PROTOCOL_MISMATCH') throw new ProtocolError(message);
  if (!ok) throw new FuncxError('SERVICE_ERROR', `the funcX service at ${serviceUrl} answered ${status}: ${message}`);
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
  if (options.pinFile) checkForwarderPin(options.pinFile, serviceUrl, forwarder.publicKey);
  return { endpointId: body.endpointId, forwarder, protocol: typeof body.protocol === 'number' ? body.protocol : PROTOCOL_VERSION };
}

/**
 * Delete the endpoint at the service (its forwarder closes, its unfinished tasks fail). Resolves 'deleted',
 * or 'unknown' when the service has no such endpoint; throws SERVICE_UNREACHABLE, UNAUTHORIZED, FORBIDDEN...
 */
export async function unregisterEndpoint(serviceUrl: string, token: string, endpointId: string, options: RegisterOptions = {}): Promise<'deleted' | 'unknown'> {
  const { status, ok, message } = await callService(serviceUrl, `/v1/endpoints/${encodeURIComponent(endpointId)}`, {
    method: 'DELETE',
    token,
    timeoutMs: options.timeoutMs ?? 10_000,
  });
  if (status === 404) return 'unknown';
  if (status === 401) throw new FuncxError('UNAUTHORIZED', `the funcX service at ${serviceUrl} refused the token: ${message}`);
  if (status === 403) throw new FuncxError('FORBIDDEN', message);
  if (!ok) throw new FuncxError('SERVICE_ERROR', `the funcX service at ${serviceUrl} answered ${status}: ${message}`);
  return 'deleted';
}
