/**
 * The endpoint profiles the chaos cases write into FUNCX_HOME/NAME/config.ts: short heartbeats so a lost peer
 * is noticed within seconds, two managers (blocks) so work can move when one breaks, and a long idle time so
 * no block is given back while a case runs.
 */

/** Engine heartbeats of every chaos profile, in seconds. */
export const HEARTBEAT = { period: 1, threshold: 4 } as const;

/**
 * `funcx-service start` arguments giving its forwarders the same short heartbeats (ms), for a case that
 * waits for the endpoint to miss the service: at the service's defaults (2 s, 10 s) the endpoint notices a
 * killed service after 10 s and tries to register again 10 s apart.
 */
export const SHORT_FORWARDER_HEARTBEAT_ARGS = ['--heartbeat-period-ms', String(HEARTBEAT.period * 1000), '--heartbeat-threshold-ms', String(HEARTBEAT.threshold * 1000)];

/** Workers per manager (per node). */
export const WORKERS_PER_NODE = 2;

const engine = `{
    address: '127.0.0.1',
    max_workers_per_node: ${WORKERS_PER_NODE},
    heartbeat_period: ${HEARTBEAT.period},
    heartbeat_threshold: ${HEARTBEAT.threshold},
  }`;

/** LocalProvider: two one-manager blocks on this machine from the start. */
export function localProfile(): string {
  return `// Written by the chaos suite (test/chaos/profiles.ts).
import { Config, LocalProvider } from 'funcx-endpoint';

export default new Config({
  engine: ${engine},
  provider: new LocalProvider({ nodes_per_block: 1, init_blocks: 2, min_blocks: 0, max_blocks: 2 }),
  strategy: { period: 1, max_idletime: 120 },
});
`;
}

/**
 * Slurm on the test cluster (examples/slurm-local.ts's shape): partition debug, 2-node blocks started with
 * srun (one manager per node), at most 2 blocks queued or running; both are submitted at start.
 */
export function slurmProfile(): string {
  return `// Written by the chaos suite (test/chaos/profiles.ts).
import { Config, SlurmProvider, SrunLauncher } from 'funcx-endpoint';

export default new Config({
  engine: ${engine},
  provider: new SlurmProvider({
    partition: 'debug',
    nodes_per_block: 2,
    launcher: new SrunLauncher(),
    walltime: '00:10:00',
    init_blocks: 2,
    min_blocks: 0,
    max_blocks: 2,
  }),
  strategy: { period: 1, max_idletime: 120, walltime_margin: 30 },
});
`;
}
