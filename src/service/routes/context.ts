/**
 * What every route file gets, and the small checks they share (body fields, access rules, views).
 */
import type { EndpointRecord, FunctionRecord, Store, TaskRecord, User } from '../store/index.js';
import type { Forwarder } from '../forwarder/forwarder.js';
import type { ResultWaiters } from './long-poll.js';
import { badRequest, forbidden, notFound } from '../auth.js';
import type { Logger } from '../../logger.js';
import type { EndpointView, TaskView } from '../../protocol/http.js';

export type { TaskView };
import type { ServiceLimits, ServiceQuotas } from '../limits.js';
import type { TaskRateLimiter } from '../task-rate.js';
import type { TokenWatch } from '../token-watch.js';

/** The forwarders of the service, by endpoint (forwarder/pool.ts). */
export interface ForwarderDirectory {
  get(endpointId: string): Forwarder | undefined;
  /** Create (or update) the endpoint's forwarder and return it. */
  ensure(endpoint: Pick<EndpointRecord, 'id' | 'publicKey' | 'ports'>): Promise<Forwarder>;
  /** Close the endpoint's forwarder (its ports are free again). */
  remove(endpointId: string): Promise<void>;
  /** The function was deleted: drop its cached source. */
  forgetFunction(functionId: string): void;
  /** The service replica these forwarders run in (saved with the endpoints it serves). */
  readonly replicaId: string;
  /** Tasks were queued for the endpoint. */
  notify(endpointId: string): void;
}

export interface ServiceContext {
  store: Store;
  forwarders: ForwarderDirectory;
  waiters: ResultWaiters;
  /** Longest `?wait=` honoured, in seconds. */
  maxWaitSeconds: number;
  /** Sizes and counts every route enforces (limits.ts). */
  limits: ServiceLimits;
  /** Per-user quotas (limits.ts); a user's own overrides are in the store (quotas.ts). */
  quotas: ServiceQuotas;
  /** Submission rate per user (task-rate.ts). */
  taskRate: TaskRateLimiter;
  /** Function-registration bytes a second per user (the same buckets, counting bytes). */
  functionRate: TaskRateLimiter;
  /** Cuts open long-polls whose token stops working (token-watch.ts). */
  tokenWatch?: TokenWatch;
  log: Logger;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(v: unknown): v is string {
  return typeof v === 'string' && UUID.test(v);
}

/** The JSON body as an object, or a 400. */
export function bodyObject(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('the request body must be a JSON object');
  return body as Record<string, unknown>;
}

/** A required non-empty string field of at most `max` characters. */
export function requireString(body: Record<string, unknown>, field: string, max = 200): string {
  const v = body[field];
  if (typeof v !== 'string' || v.trim() === '') throw badRequest(`"${field}" must be a non-empty string`);
  if (v.length > max) throw badRequest(`"${field}" is longer than ${max} characters`);
  return v;
}

export function optionalString(body: Record<string, unknown>, field: string, max = 200): string | undefined {
  return body[field] === undefined || body[field] === null ? undefined : requireString(body, field, max);
}

/** `?wait=SECONDS` → milliseconds, capped. */
export function waitMs(query: unknown, maxSeconds: number): number {
  const raw = (query as { wait?: unknown } | null)?.wait;
  if (raw === undefined || raw === '') return 0;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds < 0) throw badRequest('"wait" must be a number of seconds ≥ 0');
  return Math.min(seconds, maxSeconds) * 1000;
}

/** Owner, or member of the endpoint's group. */
export async function mayUseEndpoint(store: Store, user: User, endpoint: EndpointRecord): Promise<boolean> {
  return endpoint.owner === user.id || (endpoint.group !== null && (await store.isGroupMember(endpoint.group, user.id)));
}

export async function endpointFor(store: Store, user: User, id: string): Promise<EndpointRecord> {
  const endpoint = isUuid(id) ? await store.endpoint(id) : undefined;
  return usableEndpoint(user, id, endpoint, endpoint ? await mayUseEndpoint(store, user, endpoint) : false);
}

/** The endpoint `id` read as `endpoint`, if `user` may use it (`member`: of its group), else the 404 or 403 to answer. */
export function usableEndpoint(user: User, id: string, endpoint: EndpointRecord | undefined, member: boolean): EndpointRecord {
  if (!endpoint) throw notFound(`no endpoint ${id}`);
  if (endpoint.owner !== user.id && !member) throw forbidden(`endpoint ${id} belongs to another user and is not shared with you`);
  return endpoint;
}

/** Owner, or member of the function's group. */
export async function functionFor(store: Store, user: User, id: string): Promise<FunctionRecord> {
  const fn = isUuid(id) ? await store.function(id) : undefined;
  const member = fn !== undefined && fn.owner !== user.id && fn.group !== null && (await store.isGroupMember(fn.group, user.id));
  return usableFunction(user, id, fn, member);
}

/** The function `id` read as `fn`, if `user` may use it (`member`: of its group), else the 404 or 403 to answer. */
export function usableFunction(user: User, id: string, fn: FunctionRecord | undefined, member: boolean): FunctionRecord {
  if (!fn) throw notFound(`no function ${id}`);
  if (fn.owner !== user.id && !member) {
    throw forbidden(`function ${id} belongs to another user and is not shared with you (ask its owner to add you to its group)`);
  }
  return fn;
}

export async function taskFor(store: Store, user: User, id: string): Promise<TaskRecord> {
  const task = isUuid(id) ? await store.task(id) : undefined;
  if (!task) throw notFound(`no task ${id}`);
  if (task.owner !== user.id) throw forbidden(`task ${id} belongs to another user`);
  return task;
}

export function isFinished(task: Pick<TaskRecord, 'state'>): boolean {
  return task.state === 'success' || task.state === 'failed';
}

/** A formatter that formats the same time once in a row: a batch's tasks share their times (one per insert, one per result batch). */
function isoOfLast(): (ms: number) => string {
  let last = NaN;
  let iso = '';
  return (ms) => (ms === last ? iso : ((last = ms), (iso = new Date(ms).toISOString())));
}
const createdIso = isoOfLast();
const updatedIso = isoOfLast();

export function taskView(task: TaskRecord): TaskView {
  return summaryView(task, task.result);
}

/** The view of a task read without its result (a summary), with the result as read or carried apart. */
export function summaryView(task: Omit<TaskRecord, 'result'>, result: Buffer | null): TaskView {
  const view: TaskView = {
    taskId: task.id,
    state: task.state,
    endpointId: task.endpoint,
    functionId: task.function,
    createdAt: createdIso(task.createdAt),
    updatedAt: updatedIso(task.updatedAt),
  };
  if (isFinished(task)) {
    view.failed = task.failed === true;
    view.result = result ? result.toString('base64') : '';
  }
  return view;
}

export async function endpointView(store: Store, e: EndpointRecord, forwarder: Forwarder | undefined): Promise<EndpointView> {
  const [owner, group, queued] = await Promise.all([
    store.userById(e.owner),
    e.group ? store.group(e.group) : undefined,
    store.countQueued(e.id),
  ]);
  return {
    endpointId: e.id,
    name: e.name,
    owner: owner?.name ?? e.owner,
    // The forwarder knows best; without one here, the replica serving the endpoint recorded its state
    // (a replica marks its own endpoints Inactive when it starts).
    state: forwarder ? forwarder.state : e.state,
    lastSeen: e.lastSeen ? new Date(e.lastSeen).toISOString() : null,
    group: e.group ? (group?.name ?? e.group) : null,
    queued,
    metadata: e.metadata ? { username: e.metadata.username, email: e.metadata.email } : null,
  };
}
