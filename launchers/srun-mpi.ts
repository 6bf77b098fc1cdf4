/**
 * Slurm, one job step per copy: each of the nodes × tasksPerNode copies runs in its own exclusive step of
 * one task holding 1/tasksPerNode of a node's CPUs. Separate steps keep copies apart (own CPUs, own PMI
 * world), so a command that is itself an MPI program, or that starts MPI work, does not share a step with
 * the others. All steps start in the background; the line waits for all of them.
 */
import { CommandLauncher, type CheckedContext, type LauncherOptions, joinWords, shellQuote } from './base.js';

export class SrunMPILauncher extends CommandLauncher {
  constructor(options: LauncherOptions = {}) {
    super('srun-mpi', options);
  }

  protected line(command: string, c: CheckedContext): string {
    // Without a CPU count per step, Slurm would pack 1-CPU steps onto the first node: giving each step its
    // share of a node spreads them. Known at render time when the profile sets cores_per_node.
    const cpus =
      c.coresPerNode !== undefined
        ? String(Math.max(1, Math.floor(c.coresPerNode / c.tasksPerNode)))
        : '"$funcx_cpus"';
    const step = joinWords(
      'srun --exclusive --nodes=1 --ntasks=1',
      `--cpus-per-task=${cpus}`,
      this.overrides,
      '/bin/bash -c',
      shellQuote(command),
    );
    const lines = [
      ...(c.coresPerNode === undefined
        ? [`funcx_cpus=$(( \${SLURM_CPUS_ON_NODE:-1} / ${c.tasksPerNode} )); [ "$funcx_cpus" -ge 1 ] || funcx_cpus=1`]
        : []),
      "funcx_pids=''",
      'funcx_i=0',
      `while [ "$funcx_i" -lt ${c.total} ]; do`,
      '  funcx_i=$((funcx_i + 1))',
      `  ${step} &`,
      '  funcx_pids="$funcx_pids $!"',
      'done',
      'funcx_rc=0',
      'for funcx_pid in $funcx_pids; do wait "$funcx_pid" || funcx_rc=$?; done',
      '(exit "$funcx_rc")',
    ];
    return lines.join('\n');
  }
}
