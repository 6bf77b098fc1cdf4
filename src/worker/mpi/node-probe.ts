/**
 * Which of an MPI block's nodes are gone: a node the scheduler took out of the job or marks down, failed or
 * not responding. The gate asks after an MPI task fails (to tell a rank that died from a node that vanished)
 * and now and then while the block runs (so a dead free node is never handed out).
 *
 * Slurm is the scheduler we can ask from inside a job without privileges: `scontrol show job -o $SLURM_JOB_ID`
 * (a node excised from the job under `--no-kill` is missing from its NodeList) and `scontrol show node -o`
 * (State DOWN, FAIL, NOT_RESPONDING, POWERED_DOWN...). Elsewhere there is no probe, and a failed task stays
 * an MPITaskFailed naming its nodes. The parsers are pure and tested on scontrol's text.
 */
import { execFile } from 'node:child_process';
import { parseSlurmNodelist } from './nodelist.js';

/** Nodes found gone among those asked about, each with why (for the task's error and the status). */
export type NodeProbe = (nodes: readonly string[]) => Promise<Map<string, string>>;

/** Runs a command, resolving its stdout; rejects on a non-zero exit or a timeout. */
export type RunCommand = (file: string, args: string[]) => Promise<string>;

const runCommand: RunCommand = (file, args) =>
  new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 10_000, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });

/** `scontrol show node -o` text → node → its State field (e.g. `IDLE`, `DOWN+NOT_RESPONDING`, `MIXED*`). */
export function parseScontrolNodes(text: string): Map<string, { state: string; reason?: string }> {
  const out = new Map<string, { state: string; reason?: string }>();
  for (const line of text.split('\n')) {
    const name = /(?:^|\s)NodeName=(\S+)/.exec(line)?.[1];
    const state = /(?:^|\s)State=(\S+)/.exec(line)?.[1];
    if (!name || !state) continue;
    // Reason runs to the end of its field, which may hold spaces: up to " [user@time]" or the line's end.
    const reason = /(?:^|\s)Reason=(.*?)(?: \[[^\]]*\])?(?:\s+\w+=|$)/.exec(line)?.[1]?.trim();
    out.set(name, reason ? { state, reason } : { state });
  }
  return out;
}

/** The nodes a node State means gone: down, failed, not responding, powered down. */
export function slurmStateIsGone(state: string): boolean {
  const parts = state.replace(/\*$/, '+NOT_RESPONDING').split('+');
  return parts.some((p) => /^(DOWN|FAIL|NOT_RESPONDING|POWERED_DOWN|POWERING_DOWN|POWER_DOWN|FUTURE)$/.test(p.replace(/[*~#%!$@^-]+$/, '')));
}

/** `scontrol show job -o` text → the job's current node list (expanded), or undefined when absent/empty. */
export function parseScontrolJobNodes(text: string): string[] | undefined {
  const list = /(?:^|\s)NodeList=(\S+)/.exec(text)?.[1];
  if (!list || list === '(null)') return undefined;
  return parseSlurmNodelist(list);
}

/**
 * A probe asking Slurm about `jobId`'s nodes. A node is gone when it has left the job's NodeList or its
 * State says so. When scontrol cannot answer, nothing is declared gone (a busy controller must not drain
 * healthy blocks); the error goes to `onError`.
 */
export function slurmNodeProbe(jobId: string, options: { run?: RunCommand; onError?: (err: Error) => void } = {}): NodeProbe {
  const run = options.run ?? runCommand;
  return async (nodes) => {
    const gone = new Map<string, string>();
    if (nodes.length === 0) return gone;
    try {
      const [jobText, nodeText] = await Promise.all([
        run('scontrol', ['show', 'job', '-o', jobId]),
        run('scontrol', ['show', 'node', '-o', nodes.join(',')]),
      ]);
      const inJob = parseScontrolJobNodes(jobText);
      const states = parseScontrolNodes(nodeText);
      for (const n of nodes) {
        const why: string[] = [];
        const s = states.get(n);
        if (s && slurmStateIsGone(s.state)) why.push(`Slurm node state ${s.state}${s.reason ? `, reason "${s.reason}"` : ''}`);
        if (inJob && !inJob.includes(n)) why.push(`no longer in Slurm job ${jobId}'s node list`);
        if (why.length) gone.set(n, why.join('; '));
      }
    } catch (err) {
      options.onError?.(err as Error);
    }
    return gone;
  };
}

/** The probe for the scheduler this manager runs under, if there is one we can ask. */
export function nodeProbeFromEnv(env: NodeJS.ProcessEnv = process.env, onError?: (err: Error) => void): NodeProbe | undefined {
  const jobId = env.SLURM_JOB_ID ?? env.SLURM_JOBID;
  if (jobId && /^\d+(_\d+)?$/.test(jobId)) return slurmNodeProbe(jobId, { onError });
  return undefined;
}
