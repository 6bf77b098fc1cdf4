/**
 * The campus cluster's profile, shipped by its sysadmins in the site folder's profiles/. Users get it with
 *
 *   funcx-endpoint configure myendpoint --template campus-slurm
 *
 * (with FUNCX_SITE_TEMPLATES naming the site's job-templates folder, whose slurm.sh.hbs adds the site's
 * QoS and `module load nodejs`). Fill in your account, then `funcx-endpoint start myendpoint`.
 */
import { Config, SlurmProvider, SrunLauncher, addressByHostname } from 'funcx-endpoint';

export default new Config({
  engine: {
    // Compute nodes reach the login nodes by name on this campus.
    address: addressByHostname(),
    max_workers_per_node: 2,
  },
  provider: new SlurmProvider({
    partition: 'debug',
    // account: 'your-lab',
    qos: 'normal',
    nodes_per_block: 1,
    launcher: new SrunLauncher(),
    walltime: '00:30:00',
    max_blocks: 4,
    // The site template already loads Node.js; add your own setup here.
    worker_init: [],
  }),
});
