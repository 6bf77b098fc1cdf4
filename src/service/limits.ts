/**
 * Every limit the service enforces, with its default, in one place. `funcx-service start` flags and
 * ServiceOptions override them; routes read them from the context.
 */
import { HttpError } from './auth.js';
import type { QuotaExceededError } from './store/index.js';
import type { RateDecision, TaskRateLimiter } from './task-rate.js';

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
  /**
   * Tasks a second one user may submit, per replica, in bursts of up to `maxBatch` (task-rate.ts); past it,
   * 429 with Retry-After. @default 2,000
   */
  taskRatePerUser: number;
  /** Days an invitation waits for an answer; then it is gone, as if declined. @default 30 */
  invitationDays: number;
  /**
   * Invitations one group owner may have pending in one user's inbox, so that no single sender fills an inbox.
   * Past it, and past the inbox quota, an invitation is dropped with the same answer as one that was sent. @default 10
   */
  invitesPerSender: number;
  /**
   * Bytes a second of function registrations (request bodies) one user may send, per replica, in bursts of up
   * to `maxFunctionBodyBytes`; past it, 429 with Retry-After on the request's headers, before its body is
   * buffered or parsed. Each 1 MiB source costs the service's one event loop its parse and prototype scan,
   * then ~11 ms in the handler (abuse run's profile: insert 7 ms, compile 3 ms). @default 1 MiB
   */
  functionRateBytesPerUser: number;
  /**
   * A body over its route's limit whose Content-Length is at most this is read and dropped after the 413, and
   * the connection kept (lingering close): closed at once with the body unread, the kernel resets it and a
   * client still sending loses the answer. A larger one is answered and the connection closed. @default 256 MiB
   */
  lingerBodyBytes: number;
}

export const DEFAULT_LIMITS: Readonly<ServiceLimits> = Object.freeze({
  maxResultBytes: 10 * 1024 * 1024,
  maxBatch: 10_000,
  maxSubmitBodyBytes: 64 * 1024 * 1024,
  maxFunctionBodyBytes: 8 * 1024 * 1024,
  maxBodyBytes: 1024 * 1024,
  maxResultIds: 10_000,
  maxReplyBytes: 32 * 1024 * 1024,
  taskRatePerUser: 2_000,
  invitationDays: 30,
  invitesPerSender: 10,
  functionRateBytesPerUser: 1024 * 1024,
  lingerBodyBytes: 256 * 1024 * 1024,
});

/**
 * Result bytes a waiting results request (POST /v1/tasks/results?wait) keeps from the wakes that carry them,
 * so its answer does not read those results again from the store; past it, they are read. Per request.
 */
export const RESULT_BYTES_KEPT_PER_WAIT = 1024 * 1024;

/**
 * The young generation's semi-space of the service process `funcx-service start` runs (V8's
 * --max-semi-space-size, MiB). A batch of 10,000 tasks makes tens of MiB of short-lived objects (request
 * bodies, rows, msgpack frames, reply views); with V8's default (16 MiB) they are scavenged many times and
 * some promoted. At 64 the end-to-end batch cost 5 µs less CPU per task over all processes (bench
 * batch-cpu.ts: 65 → 60 and 59 → 54 µs), the price being up to ~128 MiB more resident memory under load.
 * A --max-semi-space-size in NODE_OPTIONS wins.
 */
export const SERVICE_SEMI_SPACE_MB = 64;

/**
 * The service's timings and sizes that are not limits: what ServiceOptions and the forwarder fall back to.
 * `funcx-service start`'s flags give the same defaults.
 */
const serviceDefaults = {
  /** HTTP port. */
  port: 8080,
  /** A forwarder and its endpoint send each other a heartbeat this often (ms). */
  heartbeatPeriodMs: 2000,
  /** An endpoint that sent nothing for this long is Inactive (ms). */
  heartbeatThresholdMs: 10_000,
  /** How often the tokens of open long-polls are checked again; a revoked one cuts them (ms). */
  tokenRecheckMs: 1000,
  /** Longest long-poll (s). */
  maxWaitSeconds: 60,
  /** A forwarder closes once its endpoint has been gone (not Active) this long; 0 keeps them open (ms). */
  forwarderIdleCloseMs: 3600_000,
  /** Forwarders are re-created at start for endpoints seen within this long (ms). */
  restoreWithinMs: 7 * 24 * 3600 * 1000,
  /** Most tasks in one message to an endpoint. */
  forwarderBatchSize: 1000,
  /** A command sent to an endpoint fails when no reply came within this long (ms). */
  commandTimeoutMs: 5000,
  /** Starts an endpoint reported wait this long for their results before they are written alone (ms). */
  runningFlushMs: 100,
};
export const SERVICE_DEFAULTS: Readonly<typeof serviceDefaults> = Object.freeze(serviceDefaults);

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

/** 429 for a submission over the user's rate (task-rate.ts), with what fits now and when the rest will. */
export function overRate(limiter: TaskRateLimiter, asked: number, rate: RateDecision): HttpError {
  const { perSecond, burst } = limiter;
  return new HttpError(
    429,
    'RATE_LIMITED',
    `over your submission rate of ${perSecond} tasks/s (bursts up to ${burst}): ${asked} asked, ${rate.available} fit now; try again in ${rate.retryAfterS} s`,
    { quota: 'taskRate', limit: perSecond, available: rate.available, retryAfterS: rate.retryAfterS },
    { 'retry-after': String(rate.retryAfterS) },
  );
}

/** 429 for a function registration over the user's bytes a second (refused before its body is parsed). */
export function overFunctionRate(limiter: TaskRateLimiter, asked: number, rate: RateDecision): HttpError {
  const { perSecond, burst } = limiter;
  return new HttpError(
    429,
    'RATE_LIMITED',
    `over your function registration rate of ${perSecond} bytes/s (bursts up to ${burst}): ${asked} bytes asked, ${rate.available} fit now; try again in ${rate.retryAfterS} s`,
    { quota: 'functionRate', limit: perSecond, available: rate.available, retryAfterS: rate.retryAfterS },
    { 'retry-after': String(rate.retryAfterS) },
  );
}

/** How much one user may hold at once. */
export interface ServiceQuotas {
  /** Tasks submitted and not yet finished. @default 100,000 */
  tasks: number;
  /** Registered functions. @default 1,000 */
  functions: number;
  /** Registered endpoints. @default 50 */
  endpoints: number;
  /** Bytes of stored results; past it, submissions are refused until results are deleted. @default 10 GiB */
  resultBytes: number;
  /** Groups the user owns. @default 100 */
  groups: number;
  /** Invitations the user sent (to their groups) that are not yet accepted or declined. @default 1,000 */
  invitations: number;
  /** Invitations pending in the user's own inbox; past it, new ones to them are refused (the sender gets 429). @default 100 */
  inbox: number;
  /**
   * UTF-8 bytes of the sources of the user's functions (the functions quota alone let a user store 1,000
   * sources of 1M characters: 1 GiB). @default 64 MiB
   */
  functionBytes: number;
}

export const DEFAULT_QUOTAS: Readonly<ServiceQuotas> = Object.freeze({
  tasks: 100_000, functions: 1_000, endpoints: 50, resultBytes: 10 * 1024 ** 3, groups: 100, invitations: 1_000, inbox: 100, functionBytes: 64 * 1024 ** 2,
});

/**
 * Seconds a client is told to wait before trying again, per quota (functions, endpoints, groups and results
 * free up only by deletion; invitations when they are answered).
 */
export const QUOTA_RETRY_AFTER_S: Readonly<Record<keyof ServiceQuotas, number>> = Object.freeze({
  tasks: 5, functions: 60, endpoints: 60, resultBytes: 60, groups: 60, invitations: 60, inbox: 60, functionBytes: 60,
});

/** What each quota frees up by, for the 429's message. */
const QUOTA_REMEDY: Readonly<Record<keyof ServiceQuotas, string>> = Object.freeze({
  tasks: 'wait for tasks to finish',
  functions: "delete some functions, or ask the service's operator for more",
  endpoints: "delete some endpoints, or ask the service's operator for more",
  resultBytes: "delete finished tasks you have the results of (DELETE /v1/tasks/ID), or ask the service's operator for more",
  groups: "delete some groups, or ask the service's operator for more",
  invitations: "wait for the invited users to accept or decline, delete a group to withdraw its invitations, or ask the service's operator for more",
  inbox: 'they have to answer some invitations first; try again later',
  functionBytes: "delete some functions, or ask the service's operator for more",
});

/** The service's quotas with the user's own overrides on top. */
export function quotasFor(service: ServiceQuotas, overrides: Partial<ServiceQuotas>): ServiceQuotas {
  return { ...service, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
}

export function resolveQuotas(given: Partial<ServiceQuotas> = {}): ServiceQuotas {
  const out = { ...DEFAULT_QUOTAS };
  for (const key of Object.keys(DEFAULT_QUOTAS) as Array<keyof ServiceQuotas>) {
    const v = given[key];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`service option quotas.${key} must be a whole number ≥ 0 (got ${String(v)})`);
    out[key] = v;
  }
  return out;
}

/** The 429 a client sees for a quota the store refused. */
export function quotaExceeded(err: QuotaExceededError): HttpError {
  const retryAfter = QUOTA_RETRY_AFTER_S[err.quota];
  if (err.quota === 'inbox') {
    // The inbox is the invited user's, not the sender's: its count, its limit (perhaps the user's own) and
    // who else wrote to it are not the sender's to know. The quota's name is all the sender learns.
    return new HttpError(429, 'QUOTA_EXCEEDED', `the invited user's inbox is full (quota inbox): ${QUOTA_REMEDY.inbox}`, { quota: 'inbox' }, { 'retry-after': String(retryAfter) });
  }
  return new HttpError(
    429,
    'QUOTA_EXCEEDED',
    `over your quota of ${err.quota}: ${err.used} in use${err.adding > 0 ? `, ${err.adding} more asked` : ''}, the limit is ${err.limit} (${QUOTA_REMEDY[err.quota]})`,
    { quota: err.quota, used: err.used, limit: err.limit },
    { 'retry-after': String(retryAfter) },
  );
}
