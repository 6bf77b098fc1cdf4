/**
 * A task's resource specification: how many nodes and MPI ranks it needs (Globus Compute's names:
 * `num_nodes`, `ranks_per_node`, `num_ranks`). Checked where it enters (SDK, service) with errors that name
 * the field; the endpoint's MPI engine packs tasks onto a block's nodes by `num_nodes`.
 */

/** What a user writes: any of the three; the others are derived. */
export interface ResourceSpecification {
  /** Nodes the task needs, each its own (no other task shares them while it runs). @default 1 */
  num_nodes?: number;
  /** MPI ranks on each node. @default num_ranks / num_nodes, else 1 */
  ranks_per_node?: number;
  /** MPI ranks in all. @default num_nodes × ranks_per_node */
  num_ranks?: number;
}

/** A checked specification, every field filled. */
export interface ResourceSpec {
  num_nodes: number;
  ranks_per_node: number;
  num_ranks: number;
}

/** Most nodes or ranks one task may ask for (a sanity bound, not a site limit). */
export const MAX_SPEC_VALUE = 1_000_000;

export class ResourceSpecError extends Error {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'ResourceSpecError';
  }
}

const FIELDS = ['num_nodes', 'ranks_per_node', 'num_ranks'] as const;

/**
 * Check a specification and fill what is missing. `where` prefixes the field in errors
 * (e.g. `tasks[3].resources` gives `tasks[3].resources.num_nodes: ...`).
 * @throws ResourceSpecError naming the field.
 */
export function checkResourceSpec(value: unknown, where = 'resource_specification'): ResourceSpec {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ResourceSpecError(where, `must be an object like { num_nodes: 2, ranks_per_node: 4 }, got ${JSON.stringify(value)}`);
  }
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) {
    if (!(FIELDS as readonly string[]).includes(key)) {
      throw new ResourceSpecError(`${where}.${key}`, `unknown field (known: ${FIELDS.join(', ')})`);
    }
  }
  const get = (field: (typeof FIELDS)[number]): number | undefined => {
    const x = v[field];
    if (x === undefined || x === null) return undefined;
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 1 || x > MAX_SPEC_VALUE) {
      throw new ResourceSpecError(`${where}.${field}`, `must be a whole number from 1 to ${MAX_SPEC_VALUE}, got ${JSON.stringify(x)}`);
    }
    return x;
  };
  const nodes = get('num_nodes') ?? 1;
  let perNode = get('ranks_per_node');
  let ranks = get('num_ranks');
  if (perNode === undefined) perNode = ranks === undefined ? 1 : Math.ceil(ranks / nodes);
  if (ranks === undefined) ranks = nodes * perNode;
  if (ranks > nodes * perNode) {
    throw new ResourceSpecError(`${where}.num_ranks`, `${ranks} ranks do not fit on num_nodes ${nodes} × ranks_per_node ${perNode}`);
  }
  if (ranks < nodes) {
    throw new ResourceSpecError(`${where}.num_ranks`, `${ranks} ranks leave some of the ${nodes} nodes without a rank (num_nodes ${nodes})`);
  }
  return { num_nodes: nodes, ranks_per_node: perNode, num_ranks: ranks };
}
