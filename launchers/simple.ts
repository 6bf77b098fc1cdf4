/**
 * Runs the command as it is, once, where the job script runs (the block's first node). For local blocks and
 * for commands that start their own processes on every node.
 */
import { CommandLauncher, type LauncherOptions } from './base.js';

export type { LauncherOptions } from './base.js';
export { shellQuote } from './base.js';

export class SimpleLauncher extends CommandLauncher {
  constructor(options: LauncherOptions = {}) {
    super('simple', options);
  }

  protected line(command: string): string {
    return command;
  }
}
