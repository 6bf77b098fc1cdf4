/**
 * The resource specification on the command line of `funcx run` and `funcx shell`:
 * `--nodes N --ranks-per-node R --ranks T` (num_nodes, ranks_per_node, num_ranks), checked before submit.
 */
import type { Command } from 'commander';
import { FuncxError } from '../errors.js';
import { checkResourceSpec, type ResourceSpec } from '../protocol/resource-spec.js';

export interface ResourceFlags {
  nodes?: string;
  ranksPerNode?: string;
  ranks?: string;
}

const FLAG: Record<string, string> = { num_nodes: '--nodes', ranks_per_node: '--ranks-per-node', num_ranks: '--ranks' };

export function addResourceOptions(command: Command): Command {
  return command
    .option('--nodes <n>', 'resource specification: nodes the task needs to itself (num_nodes)')
    .option('--ranks-per-node <n>', 'resource specification: MPI ranks per node (ranks_per_node)')
    .option('--ranks <n>', 'resource specification: MPI ranks in all (num_ranks)');
}

/** The flags as a checked specification, or undefined when none was given. Errors name the flag and field. */
export function resourcesFromFlags(o: ResourceFlags): ResourceSpec | undefined {
  if (o.nodes === undefined && o.ranksPerNode === undefined && o.ranks === undefined) return undefined;
  const num = (v: string | undefined): number | string | undefined => (v === undefined ? undefined : /^\d+$/.test(v) ? Number(v) : v);
  try {
    return checkResourceSpec({ num_nodes: num(o.nodes), ranks_per_node: num(o.ranksPerNode), num_ranks: num(o.ranks) }, 'resources');
  } catch (err) {
    const field = /resources\.(\w+)/.exec((err as Error).message)?.[1];
    const flag = field ? FLAG[field] : undefined;
    throw new FuncxError('USAGE', `${flag ? `${flag}: ` : ''}${(err as Error).message}`);
  }
}
