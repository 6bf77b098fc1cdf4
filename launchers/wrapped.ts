/**
 * Runs the command behind a user's prefix, e.g. `time` or `singularity exec image.sif`:
 * `<prepend> [overrides] /bin/bash -c '<command>'` (bash -c, so the prefix applies to the whole command line
 * and not only to its first word). Runs once, where the job script runs.
 */
import { CommandLauncher, checkRawFlags, joinWords, shellQuote, type LauncherOptions } from './base.js';

export interface WrappedLauncherOptions extends LauncherOptions {
  /** The prefix, as raw shell words (one line, no NUL). @default "" */
  prepend?: string;
}

export class WrappedLauncher extends CommandLauncher {
  private readonly prepend: string;

  constructor(options: WrappedLauncherOptions = {}) {
    super('wrapped', options);
    this.prepend = checkRawFlags(this.name, 'prepend', options.prepend);
  }

  protected line(command: string): string {
    return joinWords(this.prepend, this.overrides, '/bin/bash -c', shellQuote(command));
  }
}
