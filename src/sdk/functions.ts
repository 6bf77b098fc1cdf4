/**
 * Descriptors for tasks that are not registered JavaScript functions: a shell command, an MPI command.
 * Pass them to `FuncXClient.run` or `Batch.add` where a function id would go.
 */

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

/** An MPI application started by the endpoint's MPI launcher with `ranks` ranks. */
export interface MPIFunction {
  readonly kind: 'mpi';
  readonly command: string;
  readonly ranks: number;
  readonly walltimeMs?: number;
}

export function MPIFunction(command: string, options: { ranks: number; walltimeMs?: number }): MPIFunction {
  if (typeof command !== 'string' || command.trim() === '') throw new TypeError('MPIFunction needs a non-empty command');
  if (!Number.isInteger(options?.ranks) || options.ranks < 1) throw new TypeError('MPIFunction needs ranks ≥ 1');
  return Object.freeze({ kind: 'mpi' as const, command, ranks: options.ranks, walltimeMs: options.walltimeMs });
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
