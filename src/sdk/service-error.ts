/**
 * The service's error answers as the SDK throws them, the wait a rate limit (429) asks for, and the request
 * sizes assumed until a 413 names the service's limit.
 */
import { FuncxError } from '../errors.js';

/** An error answer of the service, with its HTTP status and code (UNAUTHORIZED, FORBIDDEN, NOT_FOUND...). */
export class ServiceError extends FuncxError {
  constructor(
    code: string,
    message: string,
    readonly status: number,
    /** The error body's other fields (e.g. `limit` of a 413, `quota`/`used` of a 429). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(code, message);
  }

  /** The limit a 413 names, if any. */
  get limit(): number | undefined {
    return typeof this.details.limit === 'number' ? this.details.limit : undefined;
  }
}

/** How many times `batchRun` or `registerFunction` waits out a rate limit (429 RATE_LIMITED) before giving up. */
export const MAX_RATE_WAITS = 60;

/** The wait a 429 RATE_LIMITED asks for (its retryAfterS, at least a second). */
export function rateWait(err: ServiceError): Promise<void> {
  return new Promise((r) => setTimeout(r, 1000 * Math.max(1, Number(err.details.retryAfterS) || 1)));
}

/** Tasks per submit and ids per results call until the service names a smaller limit (its defaults). */
export const DEFAULT_CHUNK = 10_000;
