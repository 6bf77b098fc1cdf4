/**
 * The one place a `funcx-endpoint` failure becomes output and an exit status (oclif's handle.ts): it prints
 * `Error: <message>` and the error's suggestions to stderr, then exits with the code's status. Only this
 * file calls process.exit, through `Exit`, which tests may replace.
 */
import { CommanderError } from 'commander';
import { FuncxError } from '../errors.js';

/** Exit status of each error code; codes not listed exit 1. */
export const EXIT_CODES: Readonly<Record<string, number>> = {
  CONFIG: 1,
  ILLEGAL_STATE: 2,
  ALREADY_RUNNING: 2,
  SERVICE_UNREACHABLE: 3,
};

/** Exit status for errors without a listed code (and for errors that are not FuncxErrors). @default 1 */
export const DEFAULT_EXIT_CODE = 1;

/** The exit hook: replace `Exit.exit` in tests to observe the status instead of exiting. */
export const Exit = {
  exit(code: number): never {
    process.exit(code);
  },
};

/** The exit status `err` leads to. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && Object.hasOwn(EXIT_CODES, code)) return EXIT_CODES[code]!;
  return DEFAULT_EXIT_CODE;
}

/** The lines `handle` prints for `err` (without the trailing newline). */
export function formatError(err: unknown): string[] {
  if (err instanceof CommanderError) return []; // commander has printed its own message (or the help)
  const e = err instanceof Error ? err : new Error(String(err));
  const lines = [`Error: ${e.message}`];
  // A profile's own FuncxError is a twin class (loaded through tsx): go by shape, not instanceof.
  const suggestions = (err as Partial<FuncxError>).suggestions;
  if (Array.isArray(suggestions)) for (const s of suggestions) lines.push(`  hint: ${s}`);
  if (process.env.FUNCX_DEBUG && e.stack) lines.push(e.stack);
  else if (!(typeof (err as { code?: unknown }).code === 'string')) lines.push('  (set FUNCX_DEBUG=1 for the stack trace)');
  return lines;
}

/** Print `err` to stderr and exit with its status. */
export function handle(err: unknown, write: (line: string) => void = (line) => process.stderr.write(line + '\n')): never {
  for (const line of formatError(err)) write(line);
  return Exit.exit(exitCodeFor(err));
}
