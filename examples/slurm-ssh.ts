/**
 * Slurm on a cluster reached over SSH: the endpoint runs elsewhere (a laptop, a VM) and submits through one
 * SSH connection to the login node. Managers on the compute nodes reach the endpoint through a reverse port
 * forward on that same connection (set SSHChannel's relay_address when compute nodes cannot reach the login
 * node's loopback).
 *
 * As written it targets the project's test cluster through the test sshd on 127.0.0.1:2222
 * (test/cluster/start-sshd.sh prints the two variables below):
 *   FUNCX_TEST_SSH_KEY          the client's private key file
 *   FUNCX_TEST_SSH_KNOWN_HOSTS  a known_hosts file holding the server's host key
 * For a real cluster, write the host name, user, key and known_hosts paths in directly.
 */
import { Config, ConfigError, SlurmProvider, SrunLauncher, SSHChannel } from 'funcx-endpoint';

function fromEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new ConfigError(`${name} is not set: run test/cluster/start-sshd.sh and export the two paths it prints`);
  return value;
}

export default new Config({
  provider: new SlurmProvider({
    partition: 'debug',
    nodes_per_block: 2,
    launcher: new SrunLauncher(),
    walltime: '00:10:00',
    max_blocks: 2,
    channel: new SSHChannel({
      hostname: '127.0.0.1',
      port: 2222,
      username: 'root',
      key_filename: fromEnv('FUNCX_TEST_SSH_KEY'),
      known_hosts: fromEnv('FUNCX_TEST_SSH_KNOWN_HOSTS'),
      // Submit scripts on the login node. An absolute path lets `render` work without connecting;
      // '~/...' is fine too (it is resolved once connected).
      script_dir: '/tmp/funcx-ssh/submit_scripts',
    }),
  }),
  engine: {
    max_workers_per_node: 2,
  },
});
