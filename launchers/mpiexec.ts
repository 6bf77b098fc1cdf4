/**
 * MPICH/Hydra-style mpiexec (PBS Pro, Torque, Cray PALS): nodes × tasksPerNode processes, tasksPerNode per
 * node. `mpiexec -n TOTAL -ppn T [overrides] /bin/bash -c '<command>'`. Hydra finds the hosts itself under
 * PBS; add e.g. `--hostfile $PBS_NODEFILE` through overrides where it does not.
 */
import type { LaunchContext, Launcher } from './launcher.js';
import { type LauncherOptions, checkContext, checkRawFlags, joinWords, shellQuote, withDebug } from './simple.js';

export class MpiExecLauncher implements Launcher {
  readonly name = 'mpiexec';
  private readonly overrides: string;
  private readonly debug: boolean;

  constructor(options: LauncherOptions = {}) {
    this.overrides = checkRawFlags(this.name, 'overrides', options.overrides);
    this.debug = options.debug ?? false;
  }

  wrap(command: string, ctx: LaunchContext): string {
    const c = checkContext(this.name, ctx);
    const line = joinWords(
      'mpiexec',
      `-n ${c.total}`,
      `-ppn ${c.tasksPerNode}`,
      this.overrides,
      '/bin/bash -c',
      shellQuote(command),
    );
    return withDebug(this.debug, this.name, c, line);
  }
}
