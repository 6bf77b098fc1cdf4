/**
 * The SDK: register functions, run them (one at a time or in batches) on endpoints, and get results by
 * long-poll: the service holds each request until the result is there, so nothing polls on a timer.
 * Its parts: client-options.ts (URL, token), transport.ts (requests, errors), batch.ts (task specs, chunks),
 * results.ts (long-polls), service-error.ts (ServiceError, rate-limit waits); their types are exported here.
 */
import { RemoteError } from '../protocol/payload.js';
import { functionSource } from './serialize.js';
import type {
  CreateGroupRequest, CreateGroupResponse, AddMemberRequest, EndpointListResponse, EndpointView, RegisterFunctionRequest,
  RegisterFunctionResponse, SubmitTasksRequest, SubmitTasksResponse, TaskSpec, TaskState, TransitionsResponse, TransitionView, WhoamiResponse,
} from '../protocol/http.js';
import type { FuncXClientOptions } from './client-options.js';
import { ServiceTransport } from './transport.js';
import { Batch, chunkSpecs, taskSpec, type Runnable } from './batch.js';
import { TaskResults, toResult, type TaskResult } from './results.js';
import { DEFAULT_CHUNK, MAX_RATE_WAITS, rateWait, ServiceError } from './service-error.js';

export { checkServiceUrl, isLoopbackHost, resolveCredentials, type FuncXClientOptions } from './client-options.js';
export { ServiceError } from './service-error.js';
export { Batch } from './batch.js';
export type { TaskResult } from './results.js';
export type { TaskState };
/** A task's transition as the service records it. */
export type Transition = TransitionView;
/** An endpoint as the service shows it. */
export type EndpointInfo = EndpointView;

export class FuncXClient {
  readonly serviceUrl: string;
  /** Every request goes through it (token, timeouts, error mapping). */
  private readonly transport: ServiceTransport;
  /** getStatus, getResult, getBatchResults. */
  private readonly results: TaskResults;
  /** Learnt from the service's 413s. */
  private maxBatch = DEFAULT_CHUNK;

  constructor(options: FuncXClientOptions = {}) {
    this.transport = new ServiceTransport(options);
    this.serviceUrl = this.transport.serviceUrl;
    this.results = new TaskResults(this.transport);
  }

  /** Register a function (or its source); returns its id. `group` shares it with that group's members. */
  async registerFunction(fn: ((...args: never[]) => unknown) | string, options: { name?: string; group?: string } = {}): Promise<string> {
    const name = options.name ?? (typeof fn === 'function' && fn.name ? fn.name : 'anonymous');
    const request: RegisterFunctionRequest = { name, source: functionSource(fn), group: options.group };
    for (let rateWaits = 0; ; rateWaits++) {
      try {
        return (await this.transport.request<RegisterFunctionResponse>('POST', '/v1/functions', request)).functionId;
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
    const reply = await this.transport.request<SubmitTasksResponse>('POST', `/v1/tasks?wait=${waitS}`, request, waitS * 1000, false);
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

  private async submit(tasks: TaskSpec[]): Promise<string[]> {
    const request: SubmitTasksRequest = { tasks };
    return (await this.transport.request<SubmitTasksResponse>('POST', '/v1/tasks', request)).taskIds;
  }

  /** A task's state without waiting. */
  async getStatus(taskId: string): Promise<TaskResult> {
    return this.results.getStatus(taskId);
  }

  /**
   * The task's value once it finished (waiting up to `waitMs`); throws RemoteError if it failed remotely and
   * FuncxError TASK_PENDING if it is still not done.
   */
  async getResult<T = unknown>(taskId: string, options: { waitMs?: number } = {}): Promise<T> {
    return this.results.getResult<T>(taskId, options);
  }

  /**
   * Results of many tasks in their order, waiting up to `waitMs` for all of them (pending ones are returned
   * as `pending: true`). `onProgress(done, total)` is called as results arrive. Failures are returned, not thrown.
   */
  async getBatchResults<T = unknown>(taskIds: string[], options: { waitMs?: number; onProgress?: (done: number, total: number) => void } = {}): Promise<TaskResult<T>[]> {
    return this.results.getBatchResults<T>(taskIds, options);
  }

  async getTransitions(taskId: string): Promise<Transition[]> {
    return (await this.transport.request<TransitionsResponse>('GET', `/v1/tasks/${encodeURIComponent(taskId)}/transitions`)).transitions;
  }

  async listEndpoints(): Promise<EndpointInfo[]> {
    return (await this.transport.request<EndpointListResponse>('GET', '/v1/endpoints')).endpoints;
  }

  async getEndpoint(endpointId: string): Promise<EndpointInfo> {
    return this.transport.request<EndpointInfo>('GET', `/v1/endpoints/${encodeURIComponent(endpointId)}`);
  }

  async whoami(): Promise<WhoamiResponse> {
    return this.transport.request<WhoamiResponse>('GET', '/v1/whoami');
  }

  async createGroup(name: string): Promise<string> {
    const request: CreateGroupRequest = { name };
    return (await this.transport.request<CreateGroupResponse>('POST', '/v1/groups', request)).groupId;
  }

  /** Invite a user (by name) to a group you own (by id or name); they are a member once they accept. */
  async addGroupMember(group: string, user: string): Promise<void> {
    const request: AddMemberRequest = { user };
    await this.transport.request('POST', `/v1/groups/${encodeURIComponent(group)}/members`, request);
  }

  /** Withdraw an invitation to a group you own (the same answer whether or not there was one). */
  async withdrawInvitation(group: string, user: string): Promise<void> {
    await this.transport.request('DELETE', `/v1/groups/${encodeURIComponent(group)}/invitations/${encodeURIComponent(user)}`);
  }

  /** Groups you were invited to and have not answered. */
  async listInvitations(): Promise<Array<{ groupId: string; name: string; owner: string }>> {
    return (await this.transport.request<{ invitations: Array<{ groupId: string; name: string; owner: string }> }>('GET', '/v1/invitations')).invitations;
  }

  async acceptInvitation(group: string): Promise<void> {
    await this.transport.request('POST', `/v1/groups/${encodeURIComponent(group)}/accept`);
  }

  async declineInvitation(group: string): Promise<void> {
    await this.transport.request('POST', `/v1/groups/${encodeURIComponent(group)}/decline`);
  }

  /** Leave a group you are a member of. */
  async leaveGroup(group: string): Promise<void> {
    await this.transport.request('POST', `/v1/groups/${encodeURIComponent(group)}/leave`);
  }

  /** Remove a member from a group you own. */
  async removeGroupMember(group: string, user: string): Promise<void> {
    await this.transport.request('DELETE', `/v1/groups/${encodeURIComponent(group)}/members/${encodeURIComponent(user)}`);
  }

  /** Replace this client's token with a new one (the old one stops working at once); returns the new token. */
  async rotateToken(): Promise<string> {
    const { token } = await this.transport.request<{ token: string }>('POST', '/v1/tokens/rotate');
    this.transport.token = token;
    return token;
  }

  /** Delete a function you own; tasks still queued for it fail with FunctionNotFound. */
  async deleteFunction(functionId: string): Promise<void> {
    await this.transport.request('DELETE', `/v1/functions/${encodeURIComponent(functionId)}`);
  }

  /** Delete an endpoint you own at the service (its unfinished tasks fail with EndpointDeleted). */
  async deleteEndpoint(endpointId: string): Promise<void> {
    await this.transport.request('DELETE', `/v1/endpoints/${encodeURIComponent(endpointId)}`);
  }

  /** Delete a group you own (by id or name): what was shared with it is no longer shared. */
  async deleteGroup(group: string): Promise<void> {
    await this.transport.request('DELETE', `/v1/groups/${encodeURIComponent(group)}`);
  }
}
