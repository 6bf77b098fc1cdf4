/**
 * mpirun (Open MPI and others): nodes × tasksPerNode processes. `mpirun -np TOTAL [overrides] /bin/bash -c
 * '<command>'`. How processes are spread over nodes is the MPI's own default; pin it through overrides
 * (Open MPI: `--map-by ppr:1:node`).
 */
import { CommandLauncher, type CheckedContext, type LauncherOptions, joinWords, shellQuote } from './base.js';

export class MpiRunLauncher extends CommandLauncher {
  constructor(options: LauncherOptions = {}) {
    super('mpirun', options);
  }

  protected line(command: string, c: CheckedContext): string {
    return joinWords('mpirun', `-np ${c.total}`, this.overrides, '/bin/bash -c', shellQuote(command));
  }
}
