/**
 * Task submission (batched), results with long-poll, and task transitions.
 *
 * The service builds a js task payload from the stored source and the SDK's already-serialized
 * arguments without decoding them; results are handed back as the opaque bytes the worker produced.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { newTaskId } from '../task-ids.js';
import { encodeTask, type TaskBody } from '../../protocol/payload.js';
import type { EndpointRecord, FunctionRecord, NewTask, SubmissionContext, TaskRecord, TaskSummary, User } from '../store/index.js';
import { checkSharedUse } from '../sharing.js';
import { RESULT_BYTES_KEPT_PER_WAIT, overRate, quotasFor, tooLarge } from '../limits.js';
import { refuseOverResultBytes } from '../quotas.js';
import { isArgsOnly } from '../task-payloads.js';
import { checkResourceSpec, type ResourceSpec } from '../../protocol/resource-spec.js';
import type { KnownOutcome, Waiting } from './long-poll.js';
import { authenticate, badRequest, forbidden, notFound, userOf } from '../auth.js';
import {
  bodyObject, isFinished, isUuid, summaryView, taskFor, taskView, usableEndpoint, usableFunction, waitMs, type ServiceContext,
} from './context.js';
import type { FinishedTaskView, SubmitTasksResponse, TaskResultsResponse, TaskView, TransitionsResponse } from '../../protocol/http.js';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** The arguments of a call without any (encodeArgs([]) is zero bytes); never written to. */
const NO_ARGS = Buffer.alloc(0);
const MAX_WALLTIME_MS = 30 * 24 * 3600 * 1000;

function walltime(v: unknown, where: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0 || v > MAX_WALLTIME_MS) {
    throw badRequest(`${where}.walltimeMs must be a positive whole number of milliseconds`);
  }
  return v;
}

function command(v: unknown, where: string): string {
  if (typeof v !== 'string' || v.trim() === '') throw badRequest(`${where}.command must be a non-empty string`);
  if (v.includes('\0')) throw badRequest(`${where}.command must not contain NUL`);
  return v;
}

function resources(v: unknown, where: string): ResourceSpec {
  try {
    return checkResourceSpec(v, `${where}.resources`);
  } catch (err) {
    throw badRequest((err as Error).message);
  }
}

/** An access check done once per distinct endpoint or function of a batch: its record, or the error to throw. */
type Checked = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * Check every distinct endpoint and function a batch names against what was read of them (one read for the
 * whole submission, beside the quotas), keeping each failure to throw where the batch first names it, so the
 * error is the one a one-by-one check would give.
 */
function checkAccess(user: User, ids: readonly NamedIds[], read: SubmissionContext): CheckedAccess {
  const out: CheckedAccess = { endpoints: new Map(), functions: new Map() };
  const check = (to: Map<string, Checked>, key: string, f: () => unknown) => {
    try {
      to.set(key, { ok: true, value: f() });
    } catch (error) {
      to.set(key, { ok: false, error });
    }
  };
  for (const { endpointId: e, functionId: f } of ids) {
    if (e !== undefined && !out.endpoints.has(e)) {
      const endpoint = isUuid(e) ? read.endpoints.get(e) : undefined;
      check(out.endpoints, e, () => usableEndpoint(user, e, endpoint, endpoint?.group != null && read.groups.has(endpoint.group)));
    }
    if (f !== undefined && !out.functions.has(f)) {
      const fn = isUuid(f) ? read.functions.get(f) : undefined;
      check(out.functions, f, () => usableFunction(user, f, fn, fn?.group != null && read.groups.has(fn.group)));
    }
  }
  return out;
}

/** The access checks of a submission's distinct endpoints and functions, by id. */
interface CheckedAccess {
  endpoints: Map<string, Checked>;
  functions: Map<string, Checked>;
}

type NamedIds = { endpointId?: string; functionId?: string };

/** The endpoint and function ids (strings) each task spec names; malformed specs are refused later, by buildTask. */
function namedIds(specs: readonly unknown[]): NamedIds[] {
  return specs.map((spec) => {
    if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) return {};
    const s = spec as Record<string, unknown>;
    return { endpointId: typeof s.endpointId === 'string' ? s.endpointId : undefined, functionId: typeof s.functionId === 'string' ? s.functionId : undefined };
  });
}

/** What a submission is checked against: one store read (PostgreSQL: one round trip) for its quotas and access. */
function readForSubmission(ctx: ServiceContext, user: User, ids: readonly NamedIds[]): Promise<SubmissionContext> {
  const endpoints = new Set<string>();
  const functions = new Set<string>();
  for (const { endpointId, functionId } of ids) {
    if (endpointId !== undefined && isUuid(endpointId)) endpoints.add(endpointId);
    if (functionId !== undefined && isUuid(functionId)) functions.add(functionId);
  }
  return ctx.store.submissionContext(user.id, [...endpoints], [...functions]);
}

function checkedValue<T>(checked: Map<string, Checked>, key: string): T {
  const c = checked.get(key)!;
  if (!c.ok) throw c.error;
  return c.value as T;
}

/** Turn one submitted task into a stored task; access to its endpoint and function was resolved by checkAccess. */
function buildTask(user: User, spec: unknown, i: number, checked: CheckedAccess): NewTask {
  const where = `tasks[${i}]`;
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw badRequest(`${where} must be an object`);
  const s = spec as Record<string, unknown>;
  if (typeof s.endpointId !== 'string') throw badRequest(`${where}.endpointId must be a string`);
  const endpoint = checkedValue<EndpointRecord>(checked.endpoints, s.endpointId);
  let body: TaskBody;
  if (s.functionId !== undefined) {
    if (typeof s.functionId !== 'string') throw badRequest(`${where}.functionId must be a string`);
    const fn = checkedValue<FunctionRecord>(checked.functions, s.functionId);
    checkSharedUse(user, endpoint, fn.id, where);
    // encodeArgs([]) is zero bytes, so "" (or no args at all) is a call without arguments.
    const args = s.args ?? '';
    if (typeof args !== 'string' || !BASE64.test(args)) {
      throw badRequest(`${where}.args must be the base64 of encodeArgs(...) (an array of arguments)`);
    }
    // No arguments (the usual no-op): one shared empty buffer, not one per task.
    const bytes = args === '' ? NO_ARGS : Buffer.from(args, 'base64');
    // Stored as is, the function named by id (task-payloads.ts): only encodeArgs' output is accepted, so
    // arguments can never pass for a whole task payload.
    if (!isArgsOnly(bytes)) throw badRequest(`${where}.args must be the base64 of encodeArgs(...) (an array of arguments)`);
    if (s.resources === undefined) return { id: newTaskId(), endpoint: s.endpointId, function: fn.id, owner: user.id, payload: bytes };
    // A resource specification travels in the task itself: this one is stored whole (source included).
    const full: TaskBody = { kind: 'js', functionId: fn.id, source: fn.source, args: bytes, resources: resources(s.resources, where) };
    return { id: newTaskId(), endpoint: s.endpointId, function: fn.id, owner: user.id, payload: encodeTask(full) };
  } else if (s.shell !== undefined) {
    checkSharedUse(user, endpoint, null, where);
    const sh = (s.shell ?? {}) as Record<string, unknown>;
    body = { kind: 'shell', command: command(sh.command, `${where}.shell`) };
    const wt = walltime(sh.walltimeMs, `${where}.shell`);
    if (wt !== undefined) body.walltimeMs = wt;
    if (sh.cwd !== undefined) {
      if (typeof sh.cwd !== 'string' || sh.cwd === '') throw badRequest(`${where}.shell.cwd must be a non-empty string`);
      body.cwd = sh.cwd;
    }
    if (sh.env !== undefined) {
      const env = sh.env as Record<string, unknown>;
      if (env === null || typeof env !== 'object' || Array.isArray(env) || Object.values(env).some((x) => typeof x !== 'string')) {
        throw badRequest(`${where}.shell.env must be an object of strings`);
      }
      body.env = env as Record<string, string>;
    }
  } else if (s.mpi !== undefined) {
    checkSharedUse(user, endpoint, null, where);
    const mpi = (s.mpi ?? {}) as Record<string, unknown>;
    if (mpi.ranks !== undefined && (typeof mpi.ranks !== 'number' || !Number.isInteger(mpi.ranks) || mpi.ranks < 1)) {
      throw badRequest(`${where}.mpi.ranks must be a whole number ≥ 1`);
    }
    const ranks = (mpi.ranks as number | undefined) ?? resources(s.resources ?? {}, where).num_ranks;
    body = { kind: 'mpi', command: command(mpi.command, `${where}.mpi`), ranks };
    // The older form (ranks only) means ranks on one node's worth of the specification.
    if (s.resources === undefined) body.resources = resources({ num_ranks: ranks }, where);
    const wt = walltime(mpi.walltimeMs, `${where}.mpi`);
    if (wt !== undefined) body.walltimeMs = wt;
  } else {
    throw badRequest(`${where} needs "functionId" and "args", "shell" or "mpi"`);
  }
  if (s.resources !== undefined) body.resources = resources(s.resources, where);
  return { id: newTaskId(), endpoint: s.endpointId, function: null, owner: user.id, payload: encodeTask(body) };
}

/**
 * Long-polls register for their tasks before they read them (`ctx.waiters.wait`), so a result is either in
 * the read or wakes the wait; the wake carries what was stored (long-poll.ts), so the answer needs no second
 * read of those tasks.
 *
 * Wait (registered already) unless the client goes away first. Resolves to a check of the caller's token to
 * await with the next read: the token may have been rotated, or its user disabled, while the request waited.
 * The check is a store read, so it is skipped when nothing could have been missed (TokenWatch.needsRecheck:
 * no change heard of since the token was looked up, within one watch period, not expired); a wait the
 * watch cut always checks (and answers 401).
 */
async function waitFor(ctx: ServiceContext, reply: FastifyReply, waiting: Waiting): Promise<{ recheck: Promise<unknown> }> {
  const onClose = () => waiting.cancel();
  reply.raw.once('close', onClose);
  let cut = false;
  // A token revoked or expired while the request waits ends the wait at once (token-watch.ts).
  const unwatch = ctx.tokenWatch?.watch(reply.request.headers.authorization, () => {
    cut = true;
    waiting.cancel();
  });
  await waiting.done;
  unwatch?.();
  reply.raw.off('close', onClose);
  const { auth } = reply.request;
  if (!cut && auth && ctx.tokenWatch && !ctx.tokenWatch.needsRecheck(auth)) return { recheck: Promise.resolve() };
  const recheck = authenticate(ctx.store, reply.request.headers.authorization);
  recheck.catch(() => undefined); // awaited by the caller, beside its read
  return { recheck }; // in an object: an async function returning the promise itself would wait for it
}

/** A task as the woken wait learned it finished: what a read of it would give. */
function withOutcome<T extends TaskSummary | TaskRecord>(task: T, known: KnownOutcome): T {
  const finished = { ...task, state: known.failed ? 'failed' : 'success', failed: known.failed, updatedAt: known.at };
  return 'result' in task ? { ...finished, result: known.result ?? null } : { ...finished, resultBytes: known.resultBytes };
}

/** withOutcome of a summary, field by field (a results request builds thousands: no spread per task). */
function summaryWithOutcome(t: TaskSummary, known: KnownOutcome): TaskSummary {
  return {
    id: t.id, endpoint: t.endpoint, function: t.function, owner: t.owner, state: known.failed ? 'failed' : 'success',
    failed: known.failed, createdAt: t.createdAt, updatedAt: known.at, resultBytes: known.resultBytes,
  };
}

/**
 * A just-submitted task after its wait: from what the wake carried (no read), else read back (finished on
 * another replica, or the wait ended first); undefined while it is unfinished.
 */
async function finishedView(ctx: ServiceContext, task: NewTask, known: KnownOutcome | undefined): Promise<FinishedTaskView | undefined> {
  if (known?.result) {
    return {
      taskId: task.id, state: known.failed ? 'failed' : 'success', endpointId: task.endpoint, functionId: task.function,
      updatedAt: new Date(known.at).toISOString(), failed: known.failed, result: known.result.toString('base64'),
    };
  }
  const record = await ctx.store.task(task.id);
  return record && isFinished(record) ? taskView(record) : undefined;
}

export function taskRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const { store } = ctx;

  /**
   * Body: `{tasks: [...]}` or the array itself. Answers `{taskIds}` in the same order. `?wait=SECONDS` (one
   * task only) holds the reply until the task finishes or the time is up, and answers the finished task too
   * (`finished`): a single call costs one request, not a submission and a long-poll.
   */
  app.post('/v1/tasks', { bodyLimit: ctx.limits.maxSubmitBodyBytes }, async (request, reply): Promise<SubmitTasksResponse> => {
    const user = userOf(request);
    const specs = Array.isArray(request.body) ? request.body : bodyObject(request.body).tasks;
    if (!Array.isArray(specs) || specs.length === 0) throw badRequest('"tasks" must be a non-empty array');
    const ms = waitMs(request.query, ctx.maxWaitSeconds);
    if (ms > 0 && specs.length !== 1) throw badRequest(`"wait" takes one task (got ${specs.length}): wait for many with POST /v1/tasks/results`);
    const { maxBatch } = ctx.limits;
    if (specs.length > maxBatch) throw tooLarge('TOO_MANY_TASKS', `at most ${maxBatch} tasks per request (got ${specs.length}): submit in several requests`, maxBatch);
    const rate = ctx.taskRate.take(user.id, specs.length);
    if (!rate.ok) throw overRate(ctx.taskRate, specs.length, rate);
    let tasks: ReturnType<typeof buildTask>[];
    let waiting: Waiting | undefined;
    try {
      // The quotas and what access is checked against, in one read (one round trip on PostgreSQL). The errors
      // keep their order: quotas first, then each task's access.
      const ids = namedIds(specs);
      const read = await readForSubmission(ctx, user, ids);
      const quotas = quotasFor(ctx.quotas, read.overrides);
      refuseOverResultBytes(quotas, read.resultBytes);
      const checked = checkAccess(user, ids, read);
      tasks = specs.map((spec, i) => buildTask(user, spec, i, checked));
      // Registered before the task exists: its result either wakes this wait or is in the read after it.
      if (ms > 0) waiting = ctx.waiters.wait([tasks[0].id], 'all', ms, { keepResults: true });
      await store.insertTasks(tasks, `user:${user.name}`, quotas.tasks);
    } catch (err) {
      waiting?.cancel();
      ctx.taskRate.refund(user.id, specs.length); // nothing was written: the submission did not count
      throw err;
    }
    for (const endpointId of new Set(tasks.map((t) => t.endpoint))) ctx.forwarders.notify(endpointId);
    const taskIds = tasks.map((t) => t.id);
    if (!waiting) return { taskIds };
    const { recheck } = await waitFor(ctx, reply, waiting);
    const [finished] = await Promise.all([finishedView(ctx, tasks[0], waiting.outcomes.get(taskIds[0])), recheck]);
    return finished ? { taskIds, finished } : { taskIds };
  });

  /** One task; `?wait=SECONDS` holds the request until it finishes or the time is up. */
  app.get<{ Params: { id: string } }>('/v1/tasks/:id', async (request, reply): Promise<TaskView> => {
    const user = userOf(request);
    const ms = waitMs(request.query, ctx.maxWaitSeconds);
    // One task: the wake may carry the result itself (bounded by the largest result the service stores).
    const waiting = ms > 0 ? ctx.waiters.wait([request.params.id], 'all', ms, { keepResults: true }) : undefined;
    let task: TaskRecord;
    try {
      task = await taskFor(store, user, request.params.id);
    } catch (err) {
      waiting?.cancel();
      throw err;
    }
    if (!waiting || isFinished(task)) {
      waiting?.cancel();
      return taskView(task);
    }
    const { recheck } = await waitFor(ctx, reply, waiting);
    const known = waiting.outcomes.get(task.id);
    const [latest] = await Promise.all([known?.result ? withOutcome(task, known) : store.task(task.id), recheck]);
    return taskView(latest!);
  });

  /**
   * Many tasks: body `{ids, mode?}`; with `?wait=SECONDS` the request returns when all of them
   * (mode "all", the default) or at least one (mode "any") finished, or when the time is up.
   * Mode "all" answers the ids in order; mode "any" only the finished ones (and how many are pending),
   * so a client following a big batch pays per result, not per pending task.
   * Each id counts once, at most maxResultIds per call (413), and one reply carries at most maxReplyBytes of
   * results (at least one): the ids that did not fit are in `remaining`, in order, for the next call.
   */
  app.post('/v1/tasks/results', async (request, reply): Promise<TaskResultsResponse> => {
    const user = userOf(request);
    const body = bodyObject(request.body);
    const ids = body.ids;
    if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string')) throw badRequest('"ids" must be an array of task ids');
    const unique = [...new Set(ids as string[])];
    const { maxResultIds, maxReplyBytes } = ctx.limits;
    if (unique.length > maxResultIds) {
      throw tooLarge('TOO_MANY_IDS', `at most ${maxResultIds} ids per request (got ${unique.length} distinct ids): ask in several requests`, maxResultIds);
    }
    const mode = body.mode ?? 'all';
    if (mode !== 'all' && mode !== 'any') throw badRequest('"mode" must be "all" or "any"');
    const ms = waitMs(request.query, ctx.maxWaitSeconds);
    const waiting = ms > 0 ? ctx.waiters.wait(unique, mode, ms, { keepResultBytes: Math.min(RESULT_BYTES_KEPT_PER_WAIT, maxReplyBytes) }) : undefined;
    // States first, results only for the page: a reply never loads more results than it sends.
    let tasks: TaskSummary[];
    try {
      const found = await store.taskSummaries(unique);
      tasks = unique.map((id) => {
        const task = found.get(id);
        if (!task) throw notFound(`no task ${id}`);
        if (task.owner !== user.id) throw forbidden(`task ${id} belongs to another user`);
        return task;
      });
    } catch (err) {
      waiting?.cancel();
      throw err;
    }
    let latest = tasks;
    const finishedFirst = tasks.filter(isFinished);
    if (waiting && (finishedFirst.length === tasks.length || (mode === 'any' && finishedFirst.length > 0))) waiting.cancel();
    else if (waiting) {
      waiting.settle(finishedFirst.map((t) => t.id));
      const { recheck } = await waitFor(ctx, reply, waiting);
      // Read again only what the wake did not tell: still pending, or finished on another replica.
      const unknown = tasks.filter((t) => !isFinished(t) && !waiting.outcomes.has(t.id)).map((t) => t.id);
      const [now] = await Promise.all([store.taskSummaries(unknown), recheck]);
      latest = tasks.map((t) => {
        const known = waiting.outcomes.get(t.id);
        return now.get(t.id) ?? (known && !isFinished(t) ? summaryWithOutcome(t, known) : t);
      });
    }
    const page: TaskSummary[] = [];
    const remaining: string[] = [];
    let bytes = 0;
    for (const t of latest) {
      const finished = isFinished(t);
      if (mode === 'any' && !finished) continue;
      // base64 in the JSON reply.
      const size = finished ? Math.ceil(t.resultBytes / 3) * 4 : 0;
      if (remaining.length > 0 || (page.length > 0 && bytes + size > maxReplyBytes)) {
        remaining.push(t.id);
        continue;
      }
      bytes += size;
      page.push(t);
    }
    // Results the wake carried are not read again.
    const kept = (t: TaskSummary): Buffer | undefined => (isFinished(t) ? waiting?.outcomes.get(t.id)?.result : undefined);
    const withResults = await store.tasks(page.filter((t) => isFinished(t) && kept(t) === undefined).map((t) => t.id));
    const results = page.map((t) => {
      const result = kept(t);
      if (result !== undefined) return summaryView(t, result);
      const read = withResults.get(t.id);
      return read ? taskView(read) : summaryView(t, null);
    });
    if (mode === 'all') return { results, remaining };
    return { results, pending: latest.filter((t) => !isFinished(t)).length, remaining };
  });

  app.get<{ Params: { id: string } }>('/v1/tasks/:id/transitions', async (request): Promise<TransitionsResponse> => {
    const task = await taskFor(store, userOf(request), request.params.id);
    return {
      taskId: task.id,
      transitions: (await store.transitions(task.id)).map((t) => ({ state: t.state, actor: t.actor, at: new Date(t.at).toISOString() })),
    };
  });
}
