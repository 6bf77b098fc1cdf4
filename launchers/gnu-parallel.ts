/**
 * GNU parallel over ssh: reads the scheduler's node list ($PBS_NODEFILE, $COBALT_NODEFILE,
 * $SLURM_JOB_NODELIST through `scontrol show hostnames`, LSF's $LSB_DJOB_HOSTFILE or $LSB_HOSTS; this host
 * alone when none is set), writes each node once into an ssh login file, and runs nodes × tasksPerNode copies
 * with `parallel --sshloginfile FILE --jobs T`, so every node gets T copies. Needs passwordless ssh between
 * the block's nodes, as parallel does.
 */
import { CommandLauncher, type CheckedContext, type LauncherOptions, joinWords, shellQuote } from './base.js';

/** Shell lines that write the block's node names, one per line, into "$funcx_nodes". */
const NODE_LIST_LINES = [
  'funcx_nodes=$(mktemp "${TMPDIR:-/tmp}/funcx-nodes.XXXXXX")',
  'if [ -n "${PBS_NODEFILE:-}" ]; then sort -u "$PBS_NODEFILE"',
  'elif [ -n "${COBALT_NODEFILE:-}" ]; then sort -u "$COBALT_NODEFILE"',
  'elif [ -n "${SLURM_JOB_NODELIST:-}" ]; then scontrol show hostnames "$SLURM_JOB_NODELIST"',
  'elif [ -n "${LSB_DJOB_HOSTFILE:-}" ]; then sort -u "$LSB_DJOB_HOSTFILE"',
  "elif [ -n \"${LSB_HOSTS:-}\" ]; then printf '%s\\n' $LSB_HOSTS | sort -u",
  // ':' is parallel's name for "this host, without ssh".
  'else echo :',
  'fi > "$funcx_nodes"',
];

export class GnuParallelLauncher extends CommandLauncher {
  constructor(options: LauncherOptions = {}) {
    super('gnu-parallel', options);
  }

  protected line(command: string, c: CheckedContext): string {
    const copies = Array.from({ length: c.total }, (_, i) => String(i + 1)).join(' ');
    // --line-buffer: managers run for hours, so their output must not wait for them to exit.
    // --workdir . and --env _: remote copies start in the job's folder with its exported variables (Parsl's
    // choice too). -q quotes the command for the remote shell, so it arrives intact.
    const run = joinWords(
      'parallel --line-buffer --workdir . --env _',
      `--jobs ${c.tasksPerNode}`,
      '--sshloginfile "$funcx_nodes"',
      this.overrides,
      '-q /bin/bash -c',
      shellQuote(command),
      `::: ${copies}`,
    );
    const lines = [...NODE_LIST_LINES, run, 'funcx_rc=$?', 'rm -f "$funcx_nodes"', '(exit "$funcx_rc")'];
    return lines.join('\n');
  }
}
