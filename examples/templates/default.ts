/**
 * A funcX endpoint profile: what `funcx-endpoint configure NAME` writes to $FUNCX_HOME/NAME/config.ts.
 *
 * This one runs workers on this machine (LocalProvider): no scheduler needed. Edit it, then run
 * `funcx-endpoint start NAME`. To see the script a block would run, `funcx-endpoint render NAME`; to check
 * the profile, `funcx-endpoint doctor NAME`. Batch-scheduler profiles (Slurm, PBS Pro, Cobalt, LSF, Grid
 * Engine, Slurm over SSH) are in the package's examples/ folder.
 */
import { Config, LocalProvider } from 'funcx-endpoint';

export default new Config({
  engine: {
    // Managers run on this machine, so they reach the endpoint on loopback. For workers on other machines
    // use an address they can reach (the global endpoint_address in $FUNCX_HOME/config.ts is the default).
    address: '127.0.0.1',
    // Workers per manager; unset = one per core.
    max_workers_per_node: 2,
    // Seconds between heartbeats, and the silence after which a manager counts as lost.
    heartbeat_period: 30,
    heartbeat_threshold: 120,
  },
  provider: new LocalProvider({
    // Managers per block; each behaves like one node.
    nodes_per_block: 1,
    // Blocks started with the endpoint, kept when idle, and the most at once.
    init_blocks: 0,
    min_blocks: 0,
    max_blocks: 1,
    // Shell lines run before the managers start, e.g. 'source ~/venv/bin/activate'.
    worker_init: [],
  }),
  strategy: {
    // Seconds between scaling decisions, and idle seconds before a block above min_blocks is released.
    period: 5,
    max_idletime: 120,
  },
});
