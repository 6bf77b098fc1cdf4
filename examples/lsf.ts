/**
 * LSF on an IBM CSM machine (Summit-like): `#BSUB -nnodes 2`, and jsrun starts one manager per node with all
 * of its cores (`jsrun -n 2 -r 1 -a 1 -c 42`).
 *
 * Change project and queue to your allocation's.
 */
import { Config, JsrunLauncher, LSFProvider, addressByHostname } from 'funcx-endpoint';

export default new Config({
  engine: {
    address: addressByHostname(),
    max_workers_per_node: 42,
  },
  provider: new LSFProvider({
    project: 'ABC123',
    queue: 'batch',
    nodes_per_block: 2,
    // Whole nodes (`-nnodes`), as Summit requires.
    request_by_nodes: true,
    cores_per_node: 42,
    walltime: '00:30:00',
    launcher: new JsrunLauncher(),
    max_blocks: 2,
    worker_init: ['module load nodejs'],
  }),
});
