/**
 * Cray ALPS (Cobalt machines such as Theta): `aprun -n TOTAL -N T [-d CORES_PER_TASK] [overrides]
 * /bin/bash -c '<command>'`. `-d` (cores per process) is given when cores_per_node is known, so each copy
 * gets its share of the node instead of one core.
 */
import type { LaunchContext, Launcher } from './launcher.js';
import { type LauncherOptions, checkContext, checkRawFlags, joinWords, shellQuote, withDebug } from './simple.js';

export class AprunLauncher implements Launcher {
  readonly name = 'aprun';
  private readonly overrides: string;
  private readonly debug: boolean;

  constructor(options: LauncherOptions = {}) {
    this.overrides = checkRawFlags(this.name, 'overrides', options.overrides);
    this.debug = options.debug ?? false;
  }

  wrap(command: string, ctx: LaunchContext): string {
    const c = checkContext(this.name, ctx);
    const depth =
      c.coresPerNode === undefined ? '' : `-d ${Math.max(1, Math.floor(c.coresPerNode / c.tasksPerNode))}`;
    const line = joinWords(
      'aprun',
      `-n ${c.total}`,
      `-N ${c.tasksPerNode}`,
      depth,
      this.overrides,
      '/bin/bash -c',
      shellQuote(command),
    );
    return withDebug(this.debug, this.name, c, line);
  }
}
