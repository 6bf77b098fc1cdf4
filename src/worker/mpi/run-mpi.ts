/**
 * Running a task that holds nodes of an MPI block: the launch prefix and node list go into the
 * environment (`FUNCX_MPI_PREFIX`, `FUNCX_MPI_NODES`, `FUNCX_MPI_NUM_RANKS`), an MPIFunction's command runs
 * under the prefix, and a non-zero exit (a rank that died, a failed launcher step) fails the task with an
 * error naming its nodes.
 */
import type { MpiTaskBody, Outcome, Placement, ShellResult } from '../../protocol/payload.js';

/** The environment a placed task sees. */
export function placementEnv(placement: Placement, ranks?: number): Record<string, string> {
  const env: Record<string, string> = { FUNCX_MPI_PREFIX: placement.prefix, FUNCX_MPI_NODES: placement.nodes.join(',') };
  if (placement.at !== undefined) env.FUNCX_MPI_PLACED_AT = String(placement.at);
  if (ranks !== undefined) env.FUNCX_MPI_NUM_RANKS = String(ranks);
  return env;
}

function tail(text: string, max = 2000): string {
  const t = text.trimEnd();
  return t.length > max ? `…${t.slice(-max)}` : t;
}

/** Run an MPI command under its placement's prefix. */
export async function runPlacedMpi(
  body: MpiTaskBody & { placement: Placement },
  runShell: (command: string, walltimeMs?: number, cwd?: string, env?: Record<string, string>) => Promise<ShellResult>,
): Promise<Outcome> {
  const { placement } = body;
  const ranks = body.resources?.num_ranks ?? body.ranks;
  const result = await runShell(`${placement.prefix} ${body.command}`, body.walltimeMs, undefined, placementEnv(placement, ranks));
  if (result.returncode === 0) return { ok: true, value: result };
  const why = result.timedOut ? `was killed after its walltime of ${body.walltimeMs} ms` : `exited with code ${result.returncode}`;
  return {
    ok: false,
    error: {
      type: 'MPITaskFailed',
      message:
        `MPI task on nodes ${placement.nodes.join(',')} (${ranks} ranks) ${why}: ${placement.prefix} ${body.command}` +
        (result.stderr.trim() ? `\nstderr: ${tail(result.stderr)}` : '') +
        (result.stdout.trim() ? `\nstdout: ${tail(result.stdout, 1000)}` : ''),
    },
  };
}
