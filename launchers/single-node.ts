/**
 * Runs tasksPerNode copies of the command on the node the job script runs on, and waits for all of them.
 * Other nodes of the block (if any) get nothing: use it for one-node blocks and local blocks.
 */
import { CommandLauncher, type CheckedContext, type LauncherOptions } from './base.js';

export class SingleNodeLauncher extends CommandLauncher {
  constructor(options: LauncherOptions = {}) {
    super('single-node', options);
  }

  protected line(command: string, c: CheckedContext): string {
    // The command becomes a function body: it keeps the script's shell variables (even unexported ones set by
    // worker_init) and needs no quoting at all. POSIX sh only, since some templates run under /bin/sh.
    // The exit status is the last failing copy's, so the job's state shows a failure.
    return [
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
  }
}
