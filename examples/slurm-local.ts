/**
 * Slurm on the cluster this endpoint runs on (the login node), with multi-node blocks started by srun.
 *
 * As written it targets the project's test cluster (test/cluster/start-slurm.sh: partition `debug`, three
 * emulated nodes on one host), and the tests use it. For a real cluster change the partition, account and
 * walltime, and set engine.address to an address of the login node that compute nodes reach
 * (addressByInterface('ib0'), addressByRoute()).
 *
 * Use: copy to $FUNCX_HOME/NAME/config.ts, then `funcx-endpoint render NAME` / `doctor NAME` / `start NAME`.
 */
import { Config, SlurmProvider, SrunLauncher } from 'funcx-endpoint';

export default new Config({
  engine: {
    // The test cluster's nodes are this host, so loopback reaches the endpoint.
    address: '127.0.0.1',
    // Workers per manager (one manager per node); keep it small on a shared login node.
    max_workers_per_node: 2,
  },
  provider: new SlurmProvider({
    partition: 'debug',
    // account: 'my-allocation',
    // qos: 'normal',
    // Each block is one job of 2 nodes; srun starts one manager on each of them.
    nodes_per_block: 2,
    launcher: new SrunLauncher(),
    walltime: '00:10:00',
    init_blocks: 0,
    min_blocks: 0,
    // At most 2 jobs (pending ones count) in the queue at once.
    max_blocks: 2,
    // Lines run in the job before the managers start, e.g. 'module load nodejs'.
    worker_init: [],
    // Raw header lines, e.g. '#SBATCH --gres=gpu:1'.
    scheduler_options: [],
  }),
  strategy: {
    max_idletime: 60,
  },
});
