/**
 * Runs tasksPerNode copies of the command on the node the job script runs on, and waits for all of them.
 * Other nodes of the block (if any) get nothing: use it for one-node blocks and local blocks.
 */
import type { LaunchContext, Launcher } from './launcher.js';
import { type LauncherOptions, checkContext, checkRawFlags, withDebug } from './simple.js';

export class SingleNodeLauncher implements Launcher {
  readonly name = 'single-node';
  private readonly debug: boolean;

  constructor(options: LauncherOptions = {}) {
    checkRawFlags(this.name, 'overrides', options.overrides);
    this.debug = options.debug ?? false;
  }

  wrap(command: string, ctx: LaunchContext): string {
    const c = checkContext(this.name, ctx);
    // The command becomes a function body: it keeps the script's shell variables (even unexported ones set by
    // worker_init) and needs no quoting at all. POSIX sh only, since some templates run under /bin/sh.
    // The exit status is the last failing copy's, so the job's state shows a failure.
    const line = [
      'funcx_run() {',
      command,
      '}',
      "funcx_pids=''",
      'funcx_i=0',
      `while [ "$funcx_i" -lt ${c.tasksPerNode} ]; do`,
      '  funcx_i=$((funcx_i + 1))',
      '  funcx_run &',
      '  funcx_pids="$funcx_pids $!"',
      'done',
      'funcx_rc=0',
      'for funcx_pid in $funcx_pids; do wait "$funcx_pid" || funcx_rc=$?; done',
      '(exit "$funcx_rc")',
    ].join('\n');
    return withDebug(this.debug, this.name, c, line);
  }
}
