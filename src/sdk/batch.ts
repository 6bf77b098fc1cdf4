/** Tasks as the service takes them: a Batch of task specs, and the chunks one submission carries. */
import { encodeArgs } from '../protocol/payload.js';
import type { TaskSpec } from '../protocol/http.js';
import { isMPIFunction, isShellFunction, isWithResources, renderCommand, type MPIFunction, type ShellFunction, type WithResources } from './functions.js';

/** What `run`, `call` and `Batch.add` take: a registered function's id, or a ShellFunction/MPIFunction (with resources or not). */
export type Runnable = string | ShellFunction | MPIFunction | WithResources;

/** Submit bodies stay under the service's default 64 MiB cap. */
const SUBMIT_BODY_BYTES = 48 * 1024 * 1024;

/** Rough JSON size of a task spec (its arguments dominate). */
function specBytes(spec: TaskSpec): number {
  return 'args' in spec ? spec.args.length + 160 : JSON.stringify(spec).length + 40;
}

/** Split `tasks` into requests of at most `max` tasks and about SUBMIT_BODY_BYTES. */
export function chunkSpecs(tasks: readonly TaskSpec[], start: number, max: number): TaskSpec[] {
  let bytes = 0;
  let end = start;
  while (end < tasks.length && end - start < max) {
    bytes += specBytes(tasks[end]);
    if (end > start && bytes > SUBMIT_BODY_BYTES) break;
    end++;
  }
  return tasks.slice(start, end);
}

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

/** The spec of one task: `fn` with its arguments, on `endpointId`. */
export function taskSpec(endpointId: string, fn: Runnable, args: unknown[]): TaskSpec {
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
