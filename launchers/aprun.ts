/**
 * Cray ALPS (Cobalt machines such as Theta): `aprun -n TOTAL -N T [-d CORES_PER_TASK] [overrides]
 * /bin/bash -c '<command>'`. `-d` (cores per process) is given when cores_per_node is known, so each copy
 * gets its share of the node instead of one core.
 */
import { CommandLauncher, type CheckedContext, type LauncherOptions, joinWords, shellQuote } from './base.js';

export class AprunLauncher extends CommandLauncher {
  constructor(options: LauncherOptions = {}) {
    super('aprun', options);
  }

  protected line(command: string, c: CheckedContext): string {
    const depth =
      c.coresPerNode === undefined ? '' : `-d ${Math.max(1, Math.floor(c.coresPerNode / c.tasksPerNode))}`;
    return joinWords(
      'aprun',
      `-n ${c.total}`,
      `-N ${c.tasksPerNode}`,
      depth,
      this.overrides,
      '/bin/bash -c',
      shellQuote(command),
    );
  }
}
