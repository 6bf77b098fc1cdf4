/**
 * What every launcher shares: option checks, context checks, the debug note, and the base class whose
 * subclasses only say how their command line looks.
 */
import { ConfigError } from '../src/errors.js';
import { shellQuote } from '../src/shell.js';
import type { LaunchContext, Launcher } from './launcher.js';

export { shellQuote };

/** Options every launcher accepts. */
export interface LauncherOptions {
  /**
   * Raw extra flags put on the launcher's command line, e.g. `"--cpu-bind=none"` for srun. Trusted profile
   * text, but one line only: NUL bytes and newlines are refused (they could start a second command).
   * @default ""
   */
  overrides?: string;
  /** Print what the launcher starts to the job's stderr (the block's output file). @default false */
  debug?: boolean;
}

/** Check a one-line raw option (overrides, prepend): a string without NUL bytes or line breaks, trimmed. */
export function checkRawFlags(launcher: string, field: string, value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') {
    throw new ConfigError(`${launcher} launcher: ${field} must be a string, got ${typeof value}`);
  }
  if (value.includes('\0')) throw new ConfigError(`${launcher} launcher: ${field} contains a NUL byte`);
  if (/[\r\n]/.test(value)) {
    throw new ConfigError(`${launcher} launcher: ${field} must be one line (it contains a line break)`, [
      `put the extra flags of ${field} on one line`,
    ]);
  }
  return value.trim();
}

/** The numbers of a launch context, checked: they are written into the job script unquoted. */
export interface CheckedContext {
  nodes: number;
  tasksPerNode: number;
  /** nodes × tasksPerNode: copies of the command in the block. */
  total: number;
  coresPerNode?: number;
  gpusPerNode?: number;
}

function positiveInt(launcher: string, field: string, value: unknown, allowZero = false): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new ConfigError(
      `${launcher} launcher: ${field} must be a whole number of at least ${allowZero ? 0 : 1}, got ${String(value)}`,
    );
  }
  return value;
}

/** Check the context's numbers; names the launcher and field when one is wrong. */
export function checkContext(launcher: string, ctx: LaunchContext): CheckedContext {
  const nodes = positiveInt(launcher, 'nodes_per_block', ctx.nodesPerBlock);
  const tasksPerNode = positiveInt(launcher, 'tasks_per_node', ctx.tasksPerNode);
  const out: CheckedContext = { nodes, tasksPerNode, total: nodes * tasksPerNode };
  if (ctx.coresPerNode !== undefined) out.coresPerNode = positiveInt(launcher, 'cores_per_node', ctx.coresPerNode);
  if (ctx.gpusPerNode !== undefined) out.gpusPerNode = positiveInt(launcher, 'gpus_per_node', ctx.gpusPerNode, true);
  return out;
}

/** The launch line, preceded by a note on stderr when debugging (so the block's output shows what ran). */
export function withDebug(debug: boolean, launcher: string, c: CheckedContext, line: string): string {
  if (!debug) return line;
  const note = `funcx launcher ${launcher}: ${c.nodes} node(s) x ${c.tasksPerNode} task(s) per node`;
  return `echo ${shellQuote(note)} >&2\n${line}`;
}

/** Join command-line pieces, leaving out empty ones (an unset overrides). */
export function joinWords(...words: string[]): string {
  return words.filter((w) => w !== '').join(' ');
}

/**
 * A launcher whose only particular is its line: subclasses implement `line` with the checked context.
 * `overrides` (raw extra flags) and `debug` are handled here.
 */
export abstract class CommandLauncher implements Launcher {
  protected readonly overrides: string;
  private readonly debug: boolean;

  constructor(
    readonly name: string,
    options: LauncherOptions = {},
  ) {
    this.overrides = checkRawFlags(name, 'overrides', options.overrides);
    this.debug = options.debug ?? false;
  }

  wrap(command: string, ctx: LaunchContext): string {
    const c = checkContext(this.name, ctx);
    return withDebug(this.debug, this.name, c, this.line(command, c));
  }

  /** The shell line (or lines) that start `command` (unquoted) as the context asks. */
  protected abstract line(command: string, c: CheckedContext): string;
}
