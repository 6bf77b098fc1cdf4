/**
 * PBS Pro (e.g. a campus cluster or an ALCF/NCAR-style machine): blocks of 2 nodes, one manager per node
 * started by mpiexec from the job's $PBS_NODEFILE.
 *
 * Change queue, account, cores_per_node and worker_init to your site's; set engine.address to an address
 * of the login node that compute nodes reach.
 */
import { Config, MpiExecLauncher, PBSProProvider, addressByHostname } from 'funcx-endpoint';

export default new Config({
  engine: {
    address: addressByHostname(),
    // One worker per core of the node (cores_per_node / cores_per_worker), at most 36.
    max_workers_per_node: 36,
  },
  provider: new PBSProProvider({
    queue: 'workq',
    account: 'MYPROJECT',
    nodes_per_block: 2,
    // `-l select=2:ncpus=36`
    cores_per_node: 36,
    walltime: '01:00:00',
    launcher: new MpiExecLauncher(),
    max_blocks: 4,
    worker_init: ['module load nodejs'],
    scheduler_options: ['#PBS -l filesystems=home:grand'],
  }),
});
