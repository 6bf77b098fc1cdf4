/**
 * Slurm in MPI mode: one manager per 3-node block hands each task nodes of its own and runs it under
 * `$FUNCX_MPI_PREFIX` (here Open MPI's mpirun; `srun` on most production clusters).
 *
 * As written it targets the project's test cluster (test/cluster/start-slurm.sh and start-mpi.sh: three
 * emulated nodes on one host, so Open MPI talks TCP over loopback and may oversubscribe). On a real cluster
 * drop mpi_launcher_overrides and worker_init, or put the site's flags there.
 *
 * Tasks ask for nodes with a resource specification:
 *   fx.run(ep, MPIFunction('./app', { resources: { num_nodes: 2, ranks_per_node: 4 } }))
 *   funcx shell --endpoint EP --nodes 2 --ranks-per-node 4 --mpi -- ./app
 */
import { Config, SimpleLauncher, SlurmProvider } from 'funcx-endpoint';

export default new Config({
  engine: {
    address: '127.0.0.1',
    mode: 'mpi',
    mpi_launcher: 'mpirun', // srun | mpiexec | mpirun | aprun | jsrun
    mpi_launcher_overrides: '--mca btl self,tcp --mca oob_tcp_if_include lo --mca btl_tcp_if_include lo --oversubscribe',
  },
  provider: new SlurmProvider({
    partition: 'debug',
    nodes_per_block: 3,
    // MPI mode runs one manager per block: the launcher must not start one per node.
    launcher: new SimpleLauncher(),
    walltime: '00:30:00',
    max_blocks: 1,
    worker_init: ['export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1'],
  }),
  strategy: {
    max_idletime: 60,
  },
});
