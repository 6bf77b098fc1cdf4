/**
 * Slurm: one job step with nodes × tasksPerNode tasks, tasksPerNode on each node of the allocation.
 * `srun --ntasks=N*T --ntasks-per-node=T --nodes=N [overrides] /bin/bash -c '<command>'`
 */
import { CommandLauncher, type CheckedContext, type LauncherOptions, joinWords, shellQuote } from './base.js';

export class SrunLauncher extends CommandLauncher {
  constructor(options: LauncherOptions = {}) {
    super('srun', options);
  }

  protected line(command: string, c: CheckedContext): string {
    return joinWords(
      'srun',
      `--ntasks=${c.total}`,
      `--ntasks-per-node=${c.tasksPerNode}`,
      `--nodes=${c.nodes}`,
      this.overrides,
      '/bin/bash -c',
      shellQuote(command),
    );
  }
}
