/**
 * Task submission (batched), results with long-poll, and task transitions.
 *
 * The service builds a js task payload from the stored source and the SDK's already-serialized
 * arguments without decoding them; results are handed back as the opaque bytes the worker produced.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { randomUUID } from 'node:crypto';
import { encodeTask, type TaskBody } from '../../protocol/payload.js';
import type { NewTask, TaskRecord, User } from '../store.js';
import { badRequest, forbidden, notFound, userOf } from '../auth.js';
import {
  bodyObject, endpointFor, functionFor, isFinished, taskFor, taskView, waitMs, type ServiceContext,
} from './context.js';
import type { SubmitTasksResponse, TaskResultsResponse, TaskView, TransitionsResponse } from '../../protocol/http.js';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
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

/** Turn one submitted task into a stored task, checking access to its endpoint and function. */
function buildTask(ctx: ServiceContext, user: User, spec: unknown, i: number, checked: Map<string, unknown>): NewTask {
  const where = `tasks[${i}]`;
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw badRequest(`${where} must be an object`);
  const s = spec as Record<string, unknown>;
  if (typeof s.endpointId !== 'string') throw badRequest(`${where}.endpointId must be a string`);
  if (!checked.has(s.endpointId)) checked.set(s.endpointId, endpointFor(ctx.store, user, s.endpointId));
  let body: TaskBody;
  let functionId: string | null = null;
  if (s.functionId !== undefined) {
    if (typeof s.functionId !== 'string') throw badRequest(`${where}.functionId must be a string`);
    const key = `fn:${s.functionId}`;
    if (!checked.has(key)) checked.set(key, functionFor(ctx.store, user, s.functionId));
    const fn = checked.get(key) as ReturnType<typeof functionFor>;
    // encodeArgs([]) is zero bytes, so "" (or no args at all) is a call without arguments.
    const args = s.args ?? '';
    if (typeof args !== 'string' || !BASE64.test(args)) {
      throw badRequest(`${where}.args must be the base64 of encodeArgs(...) (an array of arguments)`);
    }
    functionId = fn.id;
    body = { kind: 'js', functionId: fn.id, source: fn.source, args: Buffer.from(args, 'base64') };
  } else if (s.shell !== undefined) {
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
    const mpi = (s.mpi ?? {}) as Record<string, unknown>;
    if (typeof mpi.ranks !== 'number' || !Number.isInteger(mpi.ranks) || mpi.ranks < 1) {
      throw badRequest(`${where}.mpi.ranks must be a whole number ≥ 1`);
    }
    body = { kind: 'mpi', command: command(mpi.command, `${where}.mpi`), ranks: mpi.ranks };
    const wt = walltime(mpi.walltimeMs, `${where}.mpi`);
    if (wt !== undefined) body.walltimeMs = wt;
  } else {
    throw badRequest(`${where} needs "functionId" and "args", "shell" or "mpi"`);
  }
  return { id: randomUUID(), endpoint: s.endpointId, function: functionId, owner: user.id, payload: encodeTask(body) };
}

/** Wait for tasks to finish (long-poll) unless the client goes away first. */
async function waitFor(ctx: ServiceContext, reply: FastifyReply, tasks: TaskRecord[], mode: 'all' | 'any', ms: number): Promise<void> {
  const pending = tasks.filter((t) => !isFinished(t)).map((t) => t.id);
  if (pending.length === 0 || ms <= 0 || (mode === 'any' && pending.length < tasks.length)) return;
  // Registered synchronously after reading the states above: no result can be stored in between.
  const waiting = ctx.waiters.wait(pending, mode, ms);
  const onClose = () => waiting.cancel();
  reply.raw.once('close', onClose);
  await waiting.done;
  reply.raw.off('close', onClose);
}

export function taskRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const { store } = ctx;

  /** Body: `{tasks: [...]}` or the array itself. Answers `{taskIds}` in the same order. */
  app.post('/v1/tasks', async (request): Promise<SubmitTasksResponse> => {
    const user = userOf(request);
    const specs = Array.isArray(request.body) ? request.body : bodyObject(request.body).tasks;
    if (!Array.isArray(specs) || specs.length === 0) throw badRequest('"tasks" must be a non-empty array');
    if (specs.length > ctx.maxBatch) throw badRequest(`at most ${ctx.maxBatch} tasks per request (got ${specs.length})`);
    const checked = new Map<string, unknown>();
    const tasks = specs.map((spec, i) => buildTask(ctx, user, spec, i, checked));
    store.insertTasks(tasks, `user:${user.name}`);
    for (const endpointId of new Set(tasks.map((t) => t.endpoint))) ctx.forwarders.notify(endpointId);
    return { taskIds: tasks.map((t) => t.id) };
  });

  /** One task; `?wait=SECONDS` holds the request until it finishes or the time is up. */
  app.get<{ Params: { id: string } }>('/v1/tasks/:id', async (request, reply): Promise<TaskView> => {
    const user = userOf(request);
    const task = taskFor(store, user, request.params.id);
    await waitFor(ctx, reply, [task], 'all', waitMs(request.query, ctx.maxWaitSeconds));
    return taskView(store.task(task.id)!);
  });

  /**
   * Many tasks: body `{ids, mode?}`; with `?wait=SECONDS` the request returns when all of them
   * (mode "all", the default) or at least one (mode "any") finished, or when the time is up.
   * Mode "all" answers every id in order; mode "any" only the finished ones (and how many are pending),
   * so a client following a big batch pays per result, not per pending task.
   */
  app.post('/v1/tasks/results', async (request, reply): Promise<TaskResultsResponse> => {
    const user = userOf(request);
    const body = bodyObject(request.body);
    const ids = body.ids;
    if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string')) throw badRequest('"ids" must be an array of task ids');
    if (ids.length > ctx.maxBatch) throw badRequest(`at most ${ctx.maxBatch} ids per request (got ${ids.length})`);
    const mode = body.mode ?? 'all';
    if (mode !== 'all' && mode !== 'any') throw badRequest('"mode" must be "all" or "any"');
    const found = store.tasks(ids as string[]);
    const tasks = (ids as string[]).map((id) => {
      const task = found.get(id);
      if (!task) throw notFound(`no task ${id}`);
      if (task.owner !== user.id) throw forbidden(`task ${id} belongs to another user`);
      return task;
    });
    await waitFor(ctx, reply, tasks, mode, waitMs(request.query, ctx.maxWaitSeconds));
    const now = store.tasks(tasks.filter((t) => !isFinished(t)).map((t) => t.id));
    const latest = tasks.map((t) => now.get(t.id) ?? t);
    if (mode === 'all') return { results: latest.map(taskView) };
    const finished = latest.filter(isFinished);
    return { results: finished.map(taskView), pending: latest.length - finished.length };
  });

  app.get<{ Params: { id: string } }>('/v1/tasks/:id/transitions', async (request): Promise<TransitionsResponse> => {
    const task = taskFor(store, userOf(request), request.params.id);
    return {
      taskId: task.id,
      transitions: store.transitions(task.id).map((t) => ({ state: t.state, actor: t.actor, at: new Date(t.at).toISOString() })),
    };
  });
}
