/**
 * Tasks' results by long-poll: the service holds each request until the results are there (or the wait is
 * up), so nothing polls on a timer. Large sets go in slices asked for at once, cut to the service's limit.
 */
import { FuncxError } from '../errors.js';
import { decodeOutcome, RemoteError, type RemoteErrorInfo } from '../protocol/payload.js';
import type { TaskResultsRequest, TaskResultsResponse, TaskState, TaskView } from '../protocol/http.js';
import { DEFAULT_CHUNK, ServiceError } from './service-error.js';
import type { ServiceTransport } from './transport.js';

/** Ids per results request while waiting for all of a batch (fetchSlices), and at most this many requests at once. */
const RESULT_SLICE_IDS = 1000;
const RESULT_SLICES = 16;

/** One task of a batch result: finished (ok with value, or failed with error) or still pending. */
export interface TaskResult<T = unknown> {
  taskId: string;
  state: TaskState;
  pending: boolean;
  ok?: boolean;
  value?: T;
  error?: RemoteErrorInfo;
}

/** A FuncXClient's result calls (getStatus, getResult, getBatchResults). */
export class TaskResults {
  /** Learnt from the service's 413s. */
  private maxIds = DEFAULT_CHUNK;

  constructor(private readonly transport: ServiceTransport) {}

  /** A task's state without waiting. */
  async getStatus(taskId: string): Promise<TaskResult> {
    return toResult(await this.transport.request<TaskView>('GET', `/v1/tasks/${encodeURIComponent(taskId)}`));
  }

  /**
   * The task's value once it finished (waiting up to `waitMs`); throws RemoteError if it failed remotely and
   * FuncxError TASK_PENDING if it is still not done.
   */
  async getResult<T = unknown>(taskId: string, options: { waitMs?: number } = {}): Promise<T> {
    const deadline = Date.now() + (options.waitMs ?? Infinity);
    for (;;) {
      const waitS = Math.max(0, Math.min(50, (deadline - Date.now()) / 1000));
      const view = await this.transport.request<TaskView>('GET', `/v1/tasks/${encodeURIComponent(taskId)}?wait=${waitS}`, undefined, waitS * 1000);
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
        body = await this.transport.request<TaskResultsResponse>('POST', `/v1/tasks/results?wait=${waitS}`, request, waitS * 1000);
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
        const next = await this.transport.request<TaskResultsResponse>('POST', '/v1/tasks/results', more);
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
}

/** A task view as a TaskResult: its outcome decoded once it finished. */
export function toResult<T>(view: Pick<TaskView, 'taskId' | 'state' | 'result'>): TaskResult<T> {
  if (view.state !== 'success' && view.state !== 'failed') return { taskId: view.taskId, state: view.state, pending: true };
  const outcome = view.result
    ? decodeOutcome(Buffer.from(view.result, 'base64'))
    : ({ ok: false, error: { type: 'MissingResult', message: 'the task finished without a result payload' } } as const);
  if (outcome.ok) return { taskId: view.taskId, state: view.state, pending: false, ok: true, value: outcome.value as T };
  return { taskId: view.taskId, state: view.state, pending: false, ok: false, error: outcome.error };
}
