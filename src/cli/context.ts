/**
 * What every `funcx-endpoint` command gets: the home it works in and where it writes. Commands print through
 * `out`/`err` (never console.log), so tests can capture them and `--json` output stays clean on stdout.
 */
import { FuncxHome } from '../endpoint/daemon/home.js';

export interface CliContext {
  /** $FUNCX_HOME (default ~/.funcx). */
  home: FuncxHome;
  /** One line to stdout (results: tables, JSON, scripts). */
  out: (line: string) => void;
  /** One line to stderr (progress, notes, prompts). */
  err: (line: string) => void;
}

/** The context of a real run: FUNCX_HOME from the environment, stdout and stderr. Fields may be overridden. */
export function createContext(overrides: Partial<CliContext> = {}): CliContext {
  return {
    home: overrides.home ?? new FuncxHome(),
    out: overrides.out ?? ((line) => process.stdout.write(line + '\n')),
    err: overrides.err ?? ((line) => process.stderr.write(line + '\n')),
  };
}
