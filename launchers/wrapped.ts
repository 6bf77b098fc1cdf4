/**
 * Runs the command behind a user's prefix, e.g. `time` or `singularity exec image.sif`:
 * `<prepend> [overrides] /bin/bash -c '<command>'` (bash -c, so the prefix applies to the whole command line
 * and not only to its first word). Runs once, where the job script runs.
 */
import type { LaunchContext, Launcher } from './launcher.js';
import { type LauncherOptions, checkContext, checkRawFlags, joinWords, shellQuote, withDebug } from './simple.js';

export interface WrappedLauncherOptions extends LauncherOptions {
  /** The prefix, as raw shell words (one line, no NUL). @default "" */
  prepend?: string;
}

export class WrappedLauncher implements Launcher {
  readonly name = 'wrapped';
  private readonly prepend: string;
  private readonly overrides: string;
  private readonly debug: boolean;

  constructor(options: WrappedLauncherOptions = {}) {
    this.prepend = checkRawFlags(this.name, 'prepend', options.prepend);
    this.overrides = checkRawFlags(this.name, 'overrides', options.overrides);
    this.debug = options.debug ?? false;
  }

  wrap(command: string, ctx: LaunchContext): string {
    const c = checkContext(this.name, ctx);
    const line = joinWords(this.prepend, this.overrides, '/bin/bash -c', shellQuote(command));
    return withDebug(this.debug, this.name, c, line);
  }
}
