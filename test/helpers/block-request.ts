/**
 * The block request the engine would make for a provider: nodes and walltime resolved by the config layer
 * from the provider's own (raw, Parsl-named) fields, exactly as `funcx-endpoint render` and the engine do.
 */
import { Config } from '../../src/config/config.js';
import type { BlockRequest, ExecutionProvider } from '../../providers/provider.js';

export const BASE_REQUEST = {
  blockId: '3',
  command: 'funcx-manager --block 3',
  jobName: 'funcx-block-3',
};

export function requestFor(
  provider: ExecutionProvider,
  base: Omit<BlockRequest, 'nodesPerBlock'> = BASE_REQUEST,
): BlockRequest {
  const s = new Config({ provider }).strategy;
  return { ...base, nodesPerBlock: s.nodes.min, walltimeS: Number.isFinite(s.walltimeS.max) ? s.walltimeS.max : undefined };
}
