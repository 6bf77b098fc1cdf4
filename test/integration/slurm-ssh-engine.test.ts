/**
 * The endpoint off the cluster: Slurm reached through the SSH channel (real sshd on 127.0.0.1:2222), the
 * worker channel riding back through the same SSH connection (reverse forward). A 2-node block runs tasks
 * on both nodes. A wrong host key is refused with a clear message.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureSlurm, ensureSshd, type SshdInfo } from './cluster-setup.js';
import { Config } from '../../src/config/config.js';
import { SlurmProvider } from '../../providers/slurm.js';
import { SSHChannel } from '../../providers/channels/ssh.js';
import { SrunLauncher } from '../../launchers/srun.js';
import { Engine } from '../../src/endpoint/engine/engine.js';
import { createLogger } from '../../src/logger.js';
import { jsTask } from '../helpers/engine-fixture.js';
import { until } from '../helpers/wait.js';
import { decodeOutcome } from '../../src/protocol/payload.js';
import type { ResultEnvelope } from '../../src/protocol/messages.js';

let sshd: SshdInfo;
before(async () => {
  await ensureSlurm();
  sshd = await ensureSshd();
});

function channel(dir: string, knownHosts = sshd.knownHostsPath): SSHChannel {
  return new SSHChannel({
    hostname: sshd.host,
    port: sshd.port,
    username: sshd.username,
    key_filename: sshd.keyPath,
    known_hosts: knownHosts,
    script_dir: join(dir, 'remote_scripts'),
  });
}

test('a 2-node Slurm block over SSH: managers dial back through the reverse forward; tasks run on both nodes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'funcx-slurm-ssh-'));
  const config = new Config({
    engine: { max_workers_per_node: 2, heartbeat_period: 1, heartbeat_threshold: 8 },
    provider: new SlurmProvider({ partition: 'debug', nodes_per_block: 2, walltime: '00:10:00', max_blocks: 1, launcher: new SrunLauncher(), channel: channel(dir) }),
    strategy: { period: 1, max_idletime: 60, walltime_margin: 5 },
  });
  const engine = new Engine({ config, name: 'sshtest', keysDir: join(dir, 'keys'), log: createLogger('slurm-ssh', 'warn') });
  await engine.start();
  try {
    const results: ResultEnvelope[] = [];
    engine.onResults = (rs) => results.push(...rs);
    const source = 'async () => { await new Promise((r) => setTimeout(r, 300)); return process.env.SLURMD_NODENAME; }';
    engine.submitMany(Array.from({ length: 24 }, () => jsTask(source, [], 'where-ssh')));
    await until('24 results', () => results.length === 24, { timeoutMs: 90_000 });
    assert.ok(results.every((r) => !r.failed));
    const nodes = new Set(results.map((r) => (decodeOutcome(r.payload) as { value: string }).value));
    assert.equal(nodes.size, 2, `tasks ran on two nodes: ${[...nodes].join(', ')}`);
    // Managers reached us through the forward, not directly: the address they were given is the forward's.
    assert.equal(engine.interchange.registry.size, 2);
  } finally {
    await engine.stop({ graceMs: 0 });
  }
});

test('a changed host key refuses the SSH connection with a message naming the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'funcx-slurm-ssh-'));
  const wrong = join(dir, 'known_hosts');
  // A valid ed25519 key line that is not the server's.
  writeFileSync(wrong, `[${sshd.host}]:${sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n`);
  const config = new Config({ provider: new SlurmProvider({ partition: 'debug', channel: channel(dir, wrong) }) });
  const engine = new Engine({ config, name: 'sshbad', keysDir: join(dir, 'keys'), log: createLogger('slurm-ssh', 'error') });
  await assert.rejects(engine.start(), (err: Error) => /host key/i.test(err.message) && err.message.includes(wrong));
  await engine.stop({ graceMs: 0 });
});
