/**
 * Descriptors for tasks that are not registered JavaScript functions: a shell command, an MPI command.
 * Pass them to `FuncXClient.run` or `Batch.add` where a function id would go.
 */
import { checkResourceSpec, type ResourceSpec, type ResourceSpecification } from '../protocol/resource-spec.js';

/** A shell command run with /bin/sh -c on a worker; its result is a ShellResult. */
export interface ShellFunction {
  readonly kind: 'shell';
  /** The command line. `{name}` placeholders are filled from the first argument of `run` (quoted). */
  readonly command: string;
  /** Kill the command after this long (result: returncode 124, timedOut). */
  readonly walltimeMs?: number;
  readonly cwd?: string;
  readonly env?: Record<string, string>;
}

export interface ShellFunctionOptions {
  /** @default no limit (the block's walltime) */
  walltimeMs?: number;
  cwd?: string;
  env?: Record<string, string>;
}

/** A shell command as a task, e.g. `ShellFunction('echo {name}', { walltimeMs: 5000 })`. */
export function ShellFunction(command: string, options: ShellFunctionOptions = {}): ShellFunction {
  if (typeof command !== 'string' || command.trim() === '') throw new TypeError('ShellFunction needs a non-empty command');
  return Object.freeze({ kind: 'shell' as const, command, ...options });
}

/** An MPI application run under the launch prefix the endpoint's MPI engine gives it (`$FUNCX_MPI_PREFIX`). */
export interface MPIFunction {
  readonly kind: 'mpi';
  readonly command: string;
  /** Ranks in all (the resource specification's num_ranks). */
  readonly ranks: number;
  readonly walltimeMs?: number;
  readonly resources?: ResourceSpec;
}

export interface MPIFunctionOptions {
  /** Nodes and ranks, e.g. `{ num_nodes: 2, ranks_per_node: 4 }`. @default { num_nodes: 1, num_ranks: ranks ?? 1 } */
  resources?: ResourceSpecification;
  /** Ranks in all, when no `resources` are given (the older form). */
  ranks?: number;
  walltimeMs?: number;
}

/**
 * An MPI command as a task, e.g. `MPIFunction('./app --x', { resources: { num_nodes: 2, ranks_per_node: 2 } })`.
 * On an endpoint in MPI mode it runs as `$FUNCX_MPI_PREFIX ./app --x` on nodes no other task holds meanwhile;
 * its result is `{ returncode, stdout, stderr }`, and a non-zero exit fails the task naming its nodes.
 * @throws TypeError naming the field at fault.
 */
export function MPIFunction(command: string, options: MPIFunctionOptions = {}): MPIFunction {
  if (typeof command !== 'string' || command.trim() === '') throw new TypeError('MPIFunction needs a non-empty command');
  if (options.ranks !== undefined && (!Number.isInteger(options.ranks) || options.ranks < 1)) throw new TypeError('MPIFunction: ranks must be a whole number ≥ 1');
  const given = options.resources ?? (options.ranks !== undefined ? { num_ranks: options.ranks } : {});
  let resources: ResourceSpec;
  try {
    resources = checkResourceSpec(given, 'MPIFunction resources');
  } catch (err) {
    throw new TypeError((err as Error).message);
  }
  return Object.freeze({ kind: 'mpi' as const, command, ranks: resources.num_ranks, walltimeMs: options.walltimeMs, resources });
}

/** A function id or ShellFunction with a resource specification (nodes and ranks), for `run` and `Batch.add`. */
export interface WithResources {
  readonly kind: 'with-resources';
  readonly target: string | ShellFunction;
  readonly resources: ResourceSpec;
}

/**
 * Attach a resource specification to a registered function (by id) or a ShellFunction:
 * `fx.run(ep, withResources(fnId, { num_nodes: 2 }), ...args)`. The task then gets nodes of its own and
 * `FUNCX_MPI_PREFIX` in its environment on an MPI endpoint.
 * @throws TypeError naming the field at fault.
 */
export function withResources(target: string | ShellFunction, resources: ResourceSpecification): WithResources {
  if (typeof target !== 'string' && !isShellFunction(target)) throw new TypeError('withResources needs a function id or a ShellFunction (MPIFunction takes resources itself)');
  try {
    return Object.freeze({ kind: 'with-resources' as const, target, resources: checkResourceSpec(resources, 'resources') });
  } catch (err) {
    throw new TypeError((err as Error).message);
  }
}

export function isWithResources(v: unknown): v is WithResources {
  return typeof v === 'object' && v !== null && (v as WithResources).kind === 'with-resources';
}

export function isShellFunction(v: unknown): v is ShellFunction {
  return typeof v === 'object' && v !== null && (v as ShellFunction).kind === 'shell';
}

export function isMPIFunction(v: unknown): v is MPIFunction {
  return typeof v === 'object' && v !== null && (v as MPIFunction).kind === 'mpi';
}

/** Quote a value for /bin/sh: one single-quoted word. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Fill `{name}` placeholders from `values`, each quoted; names not in `values` are left as written. */
export function renderCommand(command: string, values: Record<string, unknown> | undefined): string {
  if (!values) return command;
  return command.replace(/\{([A-Za-z_]\w*)\}/g, (whole, name: string) =>
    Object.hasOwn(values, name) ? shellQuote(String(values[name])) : whole,
  );
}
