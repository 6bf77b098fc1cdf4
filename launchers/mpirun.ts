/**
 * mpirun (Open MPI and others): nodes × tasksPerNode processes. `mpirun -np TOTAL [overrides] /bin/bash -c
 * '<command>'`. How processes are spread over nodes is the MPI's own default; pin it through overrides
 * (Open MPI: `--map-by ppr:1:node`).
 */
import type { LaunchContext, Launcher } from './launcher.js';
import { type LauncherOptions, checkContext, checkRawFlags, joinWords, shellQuote, withDebug } from './simple.js';

export class MpiRunLauncher implements Launcher {
  readonly name = 'mpirun';
  private readonly overrides: string;
  private readonly debug: boolean;

  constructor(options: LauncherOptions = {}) {
    this.overrides = checkRawFlags(this.name, 'overrides', options.overrides);
    this.debug = options.debug ?? false;
  }

  wrap(command: string, ctx: LaunchContext): string {
    const c = checkContext(this.name, ctx);
    const line = joinWords('mpirun', `-np ${c.total}`, this.overrides, '/bin/bash -c', shellQuote(command));
    return withDebug(this.debug, this.name, c, line);
  }
}
