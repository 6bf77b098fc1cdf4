/**
 * The SDK: register functions, run them (one at a time or in batches) on endpoints, and get results by
 * long-poll: the service holds each request until the result is there, so nothing polls on a timer.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { FuncxError, ProtocolError } from '../errors.js';
import { PROTOCOL_VERSION } from '../protocol/messages.js';
import { decodeOutcome, encodeArgs, RemoteError, type RemoteErrorInfo } from '../protocol/payload.js';
import { isMPIFunction, isShellFunction, isWithResources, renderCommand, type MPIFunction, type ShellFunction, type WithResources } from './functions.js';
import type { ResourceSpec } from '../protocol/resource-spec.js';
import { functionSource } from './serialize.js';
import { HttpPool } from './http-pool.js';
import type {
  CreateGroupRequest, CreateGroupResponse, AddMemberRequest, EndpointListResponse, ErrorBody, EndpointView, RegisterFunctionRequest,
  RegisterFunctionResponse, SubmitTasksRequest, SubmitTasksResponse, TaskResultsRequest, TaskResultsResponse, TaskSpec,
  TaskState, TaskView, TransitionsResponse, TransitionView, WhoamiResponse,
} from '../protocol/http.js';

export type { TaskState };
/** A task's transition as the service records it. */
export type Transition = TransitionView;
/** An endpoint as the service shows it. */
export type EndpointInfo = EndpointView;

/** @default FUNCX_SERVICE_URL, else credentials.json's serviceUrl, else http://127.0.0.1:8080 */
export interface FuncXClientOptions {
  serviceUrl?: string;
  /** @default FUNCX_TOKEN, else credentials.json's token */
  token?: string;
  /** Per request (long-polls get their wait on top). @default 30000 */
  timeoutMs?: number;
  /** A PEM file of the CA that signed the service's certificate (NODE_EXTRA_CA_CERTS works too). */
  caFile?: string;
  /** Allow plain http:// to a host that is not loopback (tokens then cross the network in clear). @default FUNCX_INSECURE=1 */
  insecure?: boolean;
}

/** Loopback hosts, where plain HTTP never leaves the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** Refuse http:// to a host that is not loopback unless `insecure`: the token would travel in clear. */
export function checkServiceUrl(serviceUrl: string, insecure = process.env.FUNCX_INSECURE === '1'): void {
  let url: URL;
  try {
    url = new URL(serviceUrl);
  } catch {
    throw new FuncxError('CONFIG', `the service URL ${JSON.stringify(serviceUrl)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new FuncxError('CONFIG', `the service URL ${JSON.stringify(serviceUrl)} is neither http:// nor https://`);
  }
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname) && !insecure) {
    throw new FuncxError('INSECURE_URL', `refusing plain http:// to ${url.host}: the token would cross the network in clear; use https://`, [
      'serve the service with `funcx-service start --tls-cert FILE --tls-key FILE`',
      'or, on a network you trust, pass --insecure (FUNCX_INSECURE=1)',
    ]);
  }
}

/** How many times `batchRun` or `registerFunction` waits out a rate limit (429 RATE_LIMITED) before giving up. */
const MAX_RATE_WAITS = 60;

/** The wait a 429 RATE_LIMITED asks for (its retryAfterS, at least a second). */
function rateWait(err: ServiceError): Promise<void> {
  return new Promise((r) => setTimeout(r, 1000 * Math.max(1, Number(err.details.retryAfterS) || 1)));
}

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

/** Tasks per submit and ids per results call until the service names a smaller limit (its defaults). */
const DEFAULT_CHUNK = 10_000;
/** Ids per results request while waiting for all of a batch (client.fetchSlices), and at most this many requests at once. */
const RESULT_SLICE_IDS = 1000;
const RESULT_SLICES = 16;
/** Submit bodies stay under the service's default 64 MiB cap. */
const SUBMIT_BODY_BYTES = 48 * 1024 * 1024;

/** Rough JSON size of a task spec (its arguments dominate). */
function specBytes(spec: TaskSpec): number {
  return 'args' in spec ? spec.args.length + 160 : JSON.stringify(spec).length + 40;
}

/** Split `tasks` into requests of at most `max` tasks and about SUBMIT_BODY_BYTES. */
function chunkSpecs(tasks: readonly TaskSpec[], start: number, max: number): TaskSpec[] {
  let bytes = 0;
  let end = start;
  while (end < tasks.length && end - start < max) {
    bytes += specBytes(tasks[end]);
    if (end > start && bytes > SUBMIT_BODY_BYTES) break;
    end++;
  }
  return tasks.slice(start, end);
}

/** One task of a batch result: finished (ok with value, or failed with error) or still pending. */
export interface TaskResult<T = unknown> {
  taskId: string;
  state: TaskState;
  pending: boolean;
  ok?: boolean;
  value?: T;
  error?: RemoteErrorInfo;
}

type Runnable = string | ShellFunction | MPIFunction | WithResources;

/** Tasks collected to be submitted in one request (`client.batchRun(batch)`). */
export class Batch {
  readonly tasks: TaskSpec[] = [];

  /** Add a task: a function id with its arguments, or a ShellFunction (first argument fills `{name}`s) or MPIFunction. */
  add(endpointId: string, fn: Runnable, ...args: unknown[]): this {
    this.tasks.push(taskSpec(endpointId, fn, args));
    return this;
  }

  get size(): number {
    return this.tasks.length;
  }
}

function taskSpec(endpointId: string, fn: Runnable, args: unknown[]): TaskSpec {
  if (isWithResources(fn)) return { ...taskSpec(endpointId, fn.target, args), resources: fn.resources };
  if (typeof fn === 'string') return { endpointId, functionId: fn, args: Buffer.from(encodeArgs(args)).toString('base64') };
  if (isShellFunction(fn)) {
    const { kind: _kind, ...shell } = fn;
    return { endpointId, shell: { ...shell, command: renderCommand(fn.command, args[0] as Record<string, unknown> | undefined) } };
  }
  if (isMPIFunction(fn)) {
    const { kind: _kind, resources, ...mpi } = fn;
    return resources ? { endpointId, mpi, resources } : { endpointId, mpi };
  }
  throw new TypeError('run/add needs a function id, a ShellFunction or an MPIFunction');
}

/** Service URL and token from the options, the environment or $FUNCX_HOME/credentials.json. */
export function resolveCredentials(options: FuncXClientOptions = {}): { serviceUrl: string; token: string } {
  const home = process.env.FUNCX_HOME || join(homedir(), '.funcx');
  let saved: { serviceUrl?: unknown; token?: unknown } = {};
  const file = join(home, 'credentials.json');
  try {
    saved = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new FuncxError('CONFIG', `${file}: cannot read credentials: ${(err as Error).message}`);
  }
  const serviceUrl = options.serviceUrl ?? process.env.FUNCX_SERVICE_URL ?? (typeof saved.serviceUrl === 'string' ? saved.serviceUrl : 'http://127.0.0.1:8080');
  const token = options.token ?? process.env.FUNCX_TOKEN ?? (typeof saved.token === 'string' ? saved.token : undefined);
  if (!token) {
    throw new FuncxError('NO_TOKEN', `no funcX token: set FUNCX_TOKEN or run \`funcx-endpoint init\` (looked in ${file})`, [
      'get a token with `funcx-service user add NAME`',
    ]);
  }
  return { serviceUrl: serviceUrl.replace(/\/+$/, ''), token };
}

export class FuncXClient {
  readonly serviceUrl: string;
  private token: string;
  private readonly timeoutMs: number;
  /** Kept-alive connections to the service (http-pool.ts, undici). */
  private readonly http: HttpPool;
  /** The service URL's path (a prefix behind a proxy), without its trailing slash. */
  private readonly basePath: string;
  /** Learnt from the service's 413s. */
  private maxBatch = DEFAULT_CHUNK;
  private maxIds = DEFAULT_CHUNK;

  constructor(options: FuncXClientOptions = {}) {
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

  /** Register a function (or its source); returns its id. `group` shares it with that group's members. */
  async registerFunction(fn: ((...args: never[]) => unknown) | string, options: { name?: string; group?: string } = {}): Promise<string> {
    const name = options.name ?? (typeof fn === 'function' && fn.name ? fn.name : 'anonymous');
    const request: RegisterFunctionRequest = { name, source: functionSource(fn), group: options.group };
    for (let rateWaits = 0; ; rateWaits++) {
      try {
        return (await this.request<RegisterFunctionResponse>('POST', '/v1/functions', request)).functionId;
      } catch (err) {
        // Over the user's registration bytes a second: nothing was stored; wait as the service says.
        if (!(err instanceof ServiceError && err.code === 'RATE_LIMITED' && rateWaits < MAX_RATE_WAITS)) throw err;
        await rateWait(err);
      }
    }
  }

  /** Run a function (by id) with arguments, or a ShellFunction/MPIFunction, on an endpoint; returns the task id. */
  async run(endpointId: string, fn: Runnable, ...args: unknown[]): Promise<string> {
    const [id] = await this.submit([taskSpec(endpointId, fn, args)]);
    return id;
  }

  /**
   * Run and wait for the value in one request (POST /v1/tasks?wait): what `getResult(await run(...))` gives,
   * without a second request. Waits up to `waitMs` (long-polling on once the submission's own wait is up);
   * throws RemoteError if the task failed remotely and FuncxError TASK_PENDING if it is still not done.
   */
  async call<T = unknown>(endpointId: string, fn: Runnable, args: unknown[] = [], options: { waitMs?: number } = {}): Promise<T> {
    const deadline = Date.now() + (options.waitMs ?? Infinity);
    const waitS = Math.max(0, Math.min(50, (deadline - Date.now()) / 1000));
    const request: SubmitTasksRequest = { tasks: [taskSpec(endpointId, fn, args)] };
    // Never sent twice: a reset during the wait may come after the service stored the task (it restarted).
    const reply = await this.request<SubmitTasksResponse>('POST', `/v1/tasks?wait=${waitS}`, request, waitS * 1000, false);
    // A service without the submission's wait answers the id alone: wait for it as for any task.
    if (!reply.finished) return this.getResult<T>(reply.taskIds[0], { waitMs: Math.max(0, deadline - Date.now()) });
    const result = toResult<T>(reply.finished);
    if (!result.ok) throw new RemoteError(result.error!);
    return result.value as T;
  }

  createBatch(): Batch {
    return new Batch();
  }

  /** Submit a whole batch in one request; task ids in the order added. */
  async batchRun(batch: Batch): Promise<string[]> {
    const ids: string[] = [];
    let rateWaits = 0;
    while (ids.length < batch.tasks.length) {
      const chunk = chunkSpecs(batch.tasks, ids.length, this.maxBatch);
      try {
        ids.push(...(await this.submit(chunk)));
      } catch (err) {
        // Over the user's submission rate: nothing was written; wait as the service says and send it again.
        if (err instanceof ServiceError && err.code === 'RATE_LIMITED' && rateWaits++ < MAX_RATE_WAITS) {
          await rateWait(err);
          continue;
        }
        // The service takes fewer per request than we sent: split to its limit and go on.
        const limit = err instanceof ServiceError && err.code === 'TOO_MANY_TASKS' ? err.limit : undefined;
        if (limit === undefined || limit >= chunk.length) throw err;
        this.maxBatch = limit;
      }
    }
    return ids;
  }

  /**
   * One results request per chunk of ids (waiting up to `waitS` for each), then the ids each reply left in
   * `remaining` (its size cap was reached) without waiting, until every id was answered.
   */
  private async fetchResults(ids: readonly string[], mode: 'all' | 'any', waitS: number): Promise<TaskView[]> {
    const out: TaskView[] = [];
    let i = 0;
    while (i < ids.length) {
      const chunk = ids.slice(i, i + this.maxIds);
      let body: TaskResultsResponse;
      const request: TaskResultsRequest = { ids: chunk, mode };
      try {
        body = await this.request<TaskResultsResponse>('POST', `/v1/tasks/results?wait=${waitS}`, request, waitS * 1000);
      } catch (err) {
        const limit = err instanceof ServiceError && err.code === 'TOO_MANY_IDS' ? err.limit : undefined;
        if (limit === undefined || limit >= chunk.length) throw err;
        this.maxIds = limit;
        continue;
      }
      i += chunk.length;
      out.push(...body.results);
      let remaining = body.remaining ?? [];
      while (remaining.length > 0) {
        const more: TaskResultsRequest = { ids: remaining, mode };
        const next = await this.request<TaskResultsResponse>('POST', '/v1/tasks/results', more);
        if (next.results.length === 0) break;
        out.push(...next.results);
        remaining = next.remaining ?? [];
      }
    }
    return out;
  }

  /**
   * Mode "all": the ids in slices of RESULT_SLICE_IDS (at most RESULT_SLICES of them), asked for at once, so
   * the first slices' answers are built, sent and decoded while the later tasks still run, not all after the
   * last one (a batch of 10,000 spent about a third of its time in that one answer). Mode "any": one request.
   */
  private async fetchSlices(ids: readonly string[], mode: 'all' | 'any', waitS: number): Promise<TaskView[]> {
    const size = Math.max(RESULT_SLICE_IDS, Math.ceil(ids.length / RESULT_SLICES));
    if (mode === 'any' || ids.length <= size) return this.fetchResults(ids, mode, waitS);
    const slices: Array<readonly string[]> = [];
    for (let i = 0; i < ids.length; i += size) slices.push(ids.slice(i, i + size));
    return (await Promise.all(slices.map((s) => this.fetchResults(s, mode, waitS)))).flat();
  }

  private async submit(tasks: TaskSpec[]): Promise<string[]> {
    const request: SubmitTasksRequest = { tasks };
    return (await this.request<SubmitTasksResponse>('POST', '/v1/tasks', request)).taskIds;
  }

  /** A task's state without waiting. */
  async getStatus(taskId: string): Promise<TaskResult> {
    return toResult(await this.request<TaskView>('GET', `/v1/tasks/${encodeURIComponent(taskId)}`));
  }

  /**
   * The task's value once it finished (waiting up to `waitMs`); throws RemoteError if it failed remotely and
   * FuncxError TASK_PENDING if it is still not done.
   */
  async getResult<T = unknown>(taskId: string, options: { waitMs?: number } = {}): Promise<T> {
    const deadline = Date.now() + (options.waitMs ?? Infinity);
    for (;;) {
      const waitS = Math.max(0, Math.min(50, (deadline - Date.now()) / 1000));
      const view = await this.request<TaskView>('GET', `/v1/tasks/${encodeURIComponent(taskId)}?wait=${waitS}`, undefined, waitS * 1000);
      const result = toResult<T>(view);
      if (!result.pending) {
        if (!result.ok) throw new RemoteError(result.error!);
        return result.value as T;
      }
      if (Date.now() >= deadline) throw new FuncxError('TASK_PENDING', `task ${taskId} is still ${view.state}`);
    }
  }

  /**
   * Results of many tasks in their order, waiting up to `waitMs` for all of them (pending ones are returned
   * as `pending: true`). `onProgress(done, total)` is called as results arrive. Failures are returned, not thrown.
   */
  async getBatchResults<T = unknown>(taskIds: string[], options: { waitMs?: number; onProgress?: (done: number, total: number) => void } = {}): Promise<TaskResult<T>[]> {
    const deadline = Date.now() + (options.waitMs ?? Infinity);
    const results = new Map<string, TaskResult<T>>();
    const unique = [...new Set(taskIds)];
    // Without progress to show, one request per chunk waits for all; with it, each answer brings what finished.
    const mode = options.onProgress ? 'any' : 'all';
    let pending = unique;
    for (let first = true; pending.length > 0; first = false) {
      const waitS = first && mode === 'any' ? 0 : Math.max(0, Math.min(50, (deadline - Date.now()) / 1000));
      for (const view of await this.fetchSlices(pending, mode, waitS)) results.set(view.taskId, toResult<T>(view));
      const before = pending.length;
      pending = pending.filter((id) => results.get(id)?.pending !== false);
      if (pending.length < before || first) options.onProgress?.(unique.length - pending.length, unique.length);
      if (Date.now() >= deadline) break;
    }
    // Mode "any" answers only finished tasks: ask once more for the states of the rest.
    const unseen = unique.filter((id) => !results.has(id));
    for (const view of await this.fetchResults(unseen, 'all', 0)) results.set(view.taskId, toResult<T>(view));
    return taskIds.map((id) => results.get(id)!);
  }

  async getTransitions(taskId: string): Promise<Transition[]> {
    return (await this.request<TransitionsResponse>('GET', `/v1/tasks/${encodeURIComponent(taskId)}/transitions`)).transitions;
  }

  async listEndpoints(): Promise<EndpointInfo[]> {
    return (await this.request<EndpointListResponse>('GET', '/v1/endpoints')).endpoints;
  }

  async getEndpoint(endpointId: string): Promise<EndpointInfo> {
    return this.request<EndpointInfo>('GET', `/v1/endpoints/${encodeURIComponent(endpointId)}`);
  }

  async whoami(): Promise<WhoamiResponse> {
    return this.request<WhoamiResponse>('GET', '/v1/whoami');
  }

  async createGroup(name: string): Promise<string> {
    const request: CreateGroupRequest = { name };
    return (await this.request<CreateGroupResponse>('POST', '/v1/groups', request)).groupId;
  }

  /** Invite a user (by name) to a group you own (by id or name); they are a member once they accept. */
  async addGroupMember(group: string, user: string): Promise<void> {
    const request: AddMemberRequest = { user };
    await this.request('POST', `/v1/groups/${encodeURIComponent(group)}/members`, request);
  }

  /** Withdraw an invitation to a group you own (the same answer whether or not there was one). */
  async withdrawInvitation(group: string, user: string): Promise<void> {
    await this.request('DELETE', `/v1/groups/${encodeURIComponent(group)}/invitations/${encodeURIComponent(user)}`);
  }

  /** Groups you were invited to and have not answered. */
  async listInvitations(): Promise<Array<{ groupId: string; name: string; owner: string }>> {
    return (await this.request<{ invitations: Array<{ groupId: string; name: string; owner: string }> }>('GET', '/v1/invitations')).invitations;
  }

  async acceptInvitation(group: string): Promise<void> {
    await this.request('POST', `/v1/groups/${encodeURIComponent(group)}/accept`);
  }

  async declineInvitation(group: string): Promise<void> {
    await this.request('POST', `/v1/groups/${encodeURIComponent(group)}/decline`);
  }

  /** Leave a group you are a member of. */
  async leaveGroup(group: string): Promise<void> {
    await this.request('POST', `/v1/groups/${encodeURIComponent(group)}/leave`);
  }

  /** Remove a member from a group you own. */
  async removeGroupMember(group: string, user: string): Promise<void> {
    await this.request('DELETE', `/v1/groups/${encodeURIComponent(group)}/members/${encodeURIComponent(user)}`);
  }

  /** Replace this client's token with a new one (the old one stops working at once); returns the new token. */
  async rotateToken(): Promise<string> {
    const { token } = await this.request<{ token: string }>('POST', '/v1/tokens/rotate');
    this.token = token;
    return token;
  }

  /** Delete a function you own; tasks still queued for it fail with FunctionNotFound. */
  async deleteFunction(functionId: string): Promise<void> {
    await this.request('DELETE', `/v1/functions/${encodeURIComponent(functionId)}`);
  }

  /** Delete an endpoint you own at the service (its unfinished tasks fail with EndpointDeleted). */
  async deleteEndpoint(endpointId: string): Promise<void> {
    await this.request('DELETE', `/v1/endpoints/${encodeURIComponent(endpointId)}`);
  }

  /** Delete a group you own (by id or name): what was shared with it is no longer shared. */
  async deleteGroup(group: string): Promise<void> {
    await this.request('DELETE', `/v1/groups/${encodeURIComponent(group)}`);
  }

  /** `resend`: send again once on a pooled connection reset before any answer (false where that could submit twice). */
  private async request<T>(method: string, path: string, body?: unknown, extraTimeoutMs = 0, resend = true): Promise<T> {
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

function toResult<T>(view: Pick<TaskView, 'taskId' | 'state' | 'result'>): TaskResult<T> {
  if (view.state !== 'success' && view.state !== 'failed') return { taskId: view.taskId, state: view.state, pending: true };
  const outcome = view.result
    ? decodeOutcome(Buffer.from(view.result, 'base64'))
    : ({ ok: false, error: { type: 'MissingResult', message: 'the task finished without a result payload' } } as const);
  if (outcome.ok) return { taskId: view.taskId, state: view.state, pending: false, ok: true, value: outcome.value as T };
  return { taskId: view.taskId, state: view.state, pending: false, ok: false, error: outcome.error };
}
