/**
 * Grid Engine (SGE / Son of Grid Engine): each block is one host (`#$ -pe smp 2` slots on it), and more
 * hosts means more blocks. As written it works on the project's one-host test cluster
 * (test/cluster/start-gridengine.sh: queue all.q, parallel environment smp).
 */
import { Config, GridEngineProvider } from 'funcx-endpoint';

export default new Config({
  engine: {
    address: '127.0.0.1',
    max_workers_per_node: 2,
  },
  provider: new GridEngineProvider({
    queue: 'all.q',
    parallel_environment: 'smp',
    // Slots asked for on the host (`#$ -pe smp 2`).
    cores_per_node: 2,
    walltime: '00:10:00',
    max_blocks: 2,
    // Memory is a site-specific complex in Grid Engine: ask for it here, e.g. '#$ -l h_vmem=2G'.
    scheduler_options: [],
  }),
});
