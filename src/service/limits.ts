/**
 * Every limit the service enforces, with its default, in one place. `funcx-service start` flags and
 * ServiceOptions override them; routes read them from the context.
 */
import { HttpError } from './auth.js';

export interface ServiceLimits {
  /** Largest result payload stored; a bigger one is stored as a ResultTooLarge error. @default 10 MiB */
  maxResultBytes: number;
  /** Most tasks in one POST /v1/tasks. @default 10,000 */
  maxBatch: number;
  /** Largest POST /v1/tasks body. @default 64 MiB */
  maxSubmitBodyBytes: number;
  /** Largest POST /v1/functions body (a source may be 1M characters). @default 8 MiB */
  maxFunctionBodyBytes: number;
  /** Largest body on every other route. @default 1 MiB */
  maxBodyBytes: number;
  /** Most task ids in one POST /v1/tasks/results. @default 10,000 */
  maxResultIds: number;
  /** Result bytes in one results reply; the ids that did not fit are named in `remaining`. @default 32 MiB */
  maxReplyBytes: number;
}

export const DEFAULT_LIMITS: Readonly<ServiceLimits> = Object.freeze({
  maxResultBytes: 10 * 1024 * 1024,
  maxBatch: 10_000,
  maxSubmitBodyBytes: 64 * 1024 * 1024,
  maxFunctionBodyBytes: 8 * 1024 * 1024,
  maxBodyBytes: 1024 * 1024,
  maxResultIds: 10_000,
  maxReplyBytes: 32 * 1024 * 1024,
});

/** The defaults with what was given (undefined keeps the default); a value that is not a positive integer is refused by name. */
export function resolveLimits(given: Partial<ServiceLimits>): ServiceLimits {
  const out = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as Array<keyof ServiceLimits>) {
    const v = given[key];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v < 1) throw new TypeError(`service option ${key} must be a whole number ≥ 1 (got ${String(v)})`);
    out[key] = v;
  }
  return out;
}

/** 413 naming the limit (also as `limit` in the body, so a client can split its request to fit). */
export function tooLarge(code: string, message: string, limit: number): HttpError {
  return new HttpError(413, code, message, { limit });
}
