/**
 * "The database cannot be reached right now": the API answers 503 with Retry-After, the forwarder leaves
 * results unacknowledged (the endpoint sends them again) and tasks queued.
 */
import { FuncxError } from '../../errors.js';

export class StoreUnavailableError extends FuncxError {
  constructor(cause: Error) {
    super('STORE_UNAVAILABLE', `the database is unavailable: ${cause.message}`, ['retry in a few seconds']);
  }
}

/** SQLSTATE classes and codes, and socket errors, that mean the connection (not the query) failed. */
const CONNECTION_CODES = new Set(['57P01', '57P02', '57P03', '53300', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH']);
const CONNECTION_MESSAGES = /Connection terminated|connection error|not queryable|timeout exceeded when trying to connect|the database system is (starting up|shutting down)/i;

export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (code.startsWith('08') || CONNECTION_CODES.has(code))) return true;
  return CONNECTION_MESSAGES.test(err.message);
}

/** Rethrow connection failures as StoreUnavailableError, anything else as it is. */
export function unavailableOr(err: unknown): never {
  if (err instanceof StoreUnavailableError) throw err;
  if (isConnectionError(err)) throw new StoreUnavailableError(err as Error);
  throw err;
}
