/**
 * Cobalt on a Cray XC40 (Theta-like): jobs go to `qsub -n NODES -t MINUTES -q QUEUE -A PROJECT`, and aprun
 * starts one manager on each compute node (`aprun -n NODES -N 1 -d 64`).
 *
 * Change queue and account to your allocation's. On Theta the compute nodes reach the login nodes by name.
 */
import { AprunLauncher, CobaltProvider, Config, addressByHostname } from 'funcx-endpoint';

export default new Config({
  engine: {
    address: addressByHostname(),
    max_workers_per_node: 64,
  },
  provider: new CobaltProvider({
    queue: 'debug-cache-quad',
    account: 'MYPROJECT',
    nodes_per_block: 2,
    // aprun -d: cores given to each manager (64 KNL cores per node).
    cores_per_node: 64,
    walltime: '00:30:00',
    // `-cc depth -j 1`: bind each copy's threads to its cores, one hardware thread per core.
    launcher: new AprunLauncher({ overrides: '-cc depth -j 1' }),
    max_blocks: 1,
    worker_init: ['module load nodejs', 'export OMP_NUM_THREADS=1'],
  }),
});
