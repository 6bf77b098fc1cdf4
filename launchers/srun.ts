/**
 * Slurm: one job step with nodes × tasksPerNode tasks, tasksPerNode on each node of the allocation.
 * `srun --ntasks=N*T --ntasks-per-node=T --nodes=N [overrides] /bin/bash -c '<command>'`
 */
import type { LaunchContext, Launcher } from './launcher.js';
import { type LauncherOptions, checkContext, checkRawFlags, joinWords, shellQuote, withDebug } from './simple.js';

export class SrunLauncher implements Launcher {
  readonly name = 'srun';
  private readonly overrides: string;
  private readonly debug: boolean;

  constructor(options: LauncherOptions = {}) {
    this.overrides = checkRawFlags(this.name, 'overrides', options.overrides);
    this.debug = options.debug ?? false;
  }

  wrap(command: string, ctx: LaunchContext): string {
    const c = checkContext(this.name, ctx);
    const line = joinWords(
      'srun',
      `--ntasks=${c.total}`,
      `--ntasks-per-node=${c.tasksPerNode}`,
      `--nodes=${c.nodes}`,
      this.overrides,
      '/bin/bash -c',
      shellQuote(command),
    );
    return withDebug(this.debug, this.name, c, line);
  }
}
