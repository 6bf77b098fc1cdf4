/**
 * IBM jsrun (LSF on Summit-style machines): one resource set per copy, T resource sets per host, one task
 * each, with the node's cores and GPUs split between them when known.
 * `jsrun -n N*T -r T -a 1 [-c CORES/T] [-g GPUS/T] [overrides] /bin/bash -c '<command>'`
 * (with T = 1: `jsrun -n N -r 1 -a 1 -c ALL_CPUS -g ALL_GPUS`, as Summit's documentation shows).
 */
import { CommandLauncher, type CheckedContext, type LauncherOptions, joinWords, shellQuote } from './base.js';

export class JsrunLauncher extends CommandLauncher {
  constructor(options: LauncherOptions = {}) {
    super('jsrun', options);
  }

  protected line(command: string, c: CheckedContext): string {
    const share = (n: number | undefined, flag: string, min: number): string =>
      n === undefined ? '' : `${flag} ${Math.max(min, Math.floor(n / c.tasksPerNode))}`;
    return joinWords(
      'jsrun',
      `-n ${c.total}`,
      `-r ${c.tasksPerNode}`,
      '-a 1',
      share(c.coresPerNode, '-c', 1),
      // -g 0 is valid (a CPU-only resource set); leave the flag out only when the GPU count is unknown.
      share(c.gpusPerNode, '-g', 0),
      this.overrides,
      '/bin/bash -c',
      shellQuote(command),
    );
  }
}
