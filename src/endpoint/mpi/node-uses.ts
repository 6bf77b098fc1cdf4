/** Checks the node map an MPI manager reports (`nodes` of a results message) before status shows it. */
import { ProtocolError } from '../../errors.js';
import type { NodeUse } from '../../protocol/messages.js';

const MAX_NODES = 100_000;

export function checkNodeUses(value: unknown[]): NodeUse[] {
  if (value.length > MAX_NODES) throw new ProtocolError(`node map of ${value.length} entries (at most ${MAX_NODES})`);
  return value.map((v, i) => {
    const u = v as Partial<NodeUse> | null;
    if (u === null || typeof u !== 'object' || typeof u.node !== 'string' || u.node.length > 255 || !(u.task === null || (typeof u.task === 'string' && u.task.length <= 255))) {
      throw new ProtocolError(`node map entry ${i} is not {node, task}`);
    }
    if (u.lost !== undefined && (typeof u.lost !== 'string' || u.lost.length > 1000)) throw new ProtocolError(`node map entry ${i}: lost is not a short string`);
    return u.lost === undefined ? { node: u.node, task: u.task } : { node: u.node, task: u.task, lost: u.lost };
  });
}
