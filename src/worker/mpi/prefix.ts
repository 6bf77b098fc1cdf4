/**
 * The launch prefix an MPI task runs under (`FUNCX_MPI_PREFIX`), for the nodes it was given and its ranks.
 * Pure: the same inputs give the same line, tested as text.
 */
import type { ResourceSpec } from '../../protocol/resource-spec.js';

export const MPI_LAUNCHERS = ['srun', 'mpiexec', 'mpirun', 'aprun', 'jsrun'] as const;
export type MpiLauncherName = (typeof MPI_LAUNCHERS)[number];

/** A node name as it goes onto a command line: scheduler host names only, so nothing needs quoting. */
const NODE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * The prefix for `spec` on `nodes` (exactly spec.num_nodes of them), e.g.
 * `srun --nodes=2 --ntasks=4 --ntasks-per-node=2 --nodelist=n1,n2 --exact --mpi=pmix` or
 * `mpirun -np 4 --host n1:2,n2:2`. `overrides` (one line of profile text) is appended as written.
 * @throws Error when a node name is not a plain host name or the count does not match.
 */
export function mpiPrefix(launcher: MpiLauncherName, nodes: readonly string[], spec: ResourceSpec, overrides = ''): string {
  if (nodes.length !== spec.num_nodes) throw new Error(`mpi prefix: ${nodes.length} nodes given for num_nodes ${spec.num_nodes}`);
  for (const n of nodes) if (!NODE.test(n)) throw new Error(`mpi prefix: node name ${JSON.stringify(n)} is not a plain host name`);
  const list = nodes.join(',');
  const { num_ranks: ranks, ranks_per_node: rpn, num_nodes: count } = spec;
  let line: string;
  switch (launcher) {
    case 'srun':
      line = `srun --nodes=${count} --ntasks=${ranks} --ntasks-per-node=${rpn} --nodelist=${list} --exact --mpi=pmix`;
      break;
    case 'mpiexec': // MPICH / Intel MPI (Hydra)
      line = `mpiexec -n ${ranks} -ppn ${rpn} -hosts ${list}`;
      break;
    case 'mpirun': // Open MPI: host:slots
      line = `mpirun -np ${ranks} --host ${nodes.map((n) => `${n}:${rpn}`).join(',')}`;
      break;
    case 'aprun': // Cray ALPS: -L takes the node ids
      line = `aprun -n ${ranks} -N ${rpn} -L ${list}`;
      break;
    case 'jsrun': // IBM LSF: one resource set per rank
      // jsrun takes no host list: LSF places the resource sets inside the job (one task per block then).
      line = `jsrun --nrs ${ranks} --rs_per_host ${rpn} --tasks_per_rs 1 --cpu_per_rs 1`;
      break;
    default: {
      const never: never = launcher;
      throw new Error(`unknown mpi_launcher ${JSON.stringify(never)}`);
    }
  }
  const extra = overrides.trim();
  return extra ? `${line} ${extra}` : line;
}
