/**
 * Workers on this machine (a laptop, a workstation, a big login node): no scheduler. Each block is a process
 * group with `nodes_per_block` managers; the strategy adds blocks up to max_blocks as work arrives.
 */
import { Config, LocalProvider } from 'funcx-endpoint';

export default new Config({
  engine: {
    address: '127.0.0.1',
    max_workers_per_node: 4,
  },
  provider: new LocalProvider({
    nodes_per_block: 1,
    init_blocks: 1,
    min_blocks: 0,
    max_blocks: 2,
    // e.g. 'source ~/venv/bin/activate'
    worker_init: [],
  }),
  strategy: {
    period: 2,
    max_idletime: 60,
  },
});
