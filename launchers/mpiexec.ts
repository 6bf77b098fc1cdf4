/**
 * MPICH/Hydra-style mpiexec (PBS Pro, Torque, Cray PALS): nodes × tasksPerNode processes, tasksPerNode per
 * node. `mpiexec -n TOTAL -ppn T [overrides] /bin/bash -c '<command>'`. Hydra finds the hosts itself under
 * PBS; add e.g. `--hostfile $PBS_NODEFILE` through overrides where it does not.
 */
import { CommandLauncher, type CheckedContext, type LauncherOptions, joinWords, shellQuote } from './base.js';

export class MpiExecLauncher extends CommandLauncher {
  constructor(options: LauncherOptions = {}) {
    super('mpiexec', options);
  }

  protected line(command: string, c: CheckedContext): string {
    return joinWords(
      'mpiexec',
      `-n ${c.total}`,
      `-ppn ${c.tasksPerNode}`,
      this.overrides,
      '/bin/bash -c',
      shellQuote(command),
    );
  }
}
