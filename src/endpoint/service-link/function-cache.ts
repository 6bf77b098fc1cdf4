/**
 * The endpoint's copy of the function sources the forwarder sent (function-sources.ts has the protocol and
 * its invariant): kept by function id and hash in an LRU bounded by characters (ENDPOINT_SOURCES_BUDGET), and
 * used to turn each task that names its function (`fn`, `h`, arguments only) into a task whose payload is the
 * full one the interchange, manager and worker know (encodeTask, built when read), before the task leaves the
 * forwarder client.
 */
import { envelopeWith, type FunctionSource, type TaskEnvelope } from '../../protocol/messages.js';
import { encodeJsTask } from '../../protocol/payload.js';
import { ENDPOINT_SOURCES_BUDGET } from '../../protocol/function-sources.js';
import { SourceReceiver } from '../../protocol/source-link.js';
import { TASK_SOURCE } from '../../protocol/task-source.js';

/** Sources up to this many characters are copied into each task's payload at once (20,000 tasks: 80 Mi at most). */
const EAGER_SOURCE_CHARS = 4096;

/**
 * The task with its full payload built when read, not kept: a queue of 20,000 tasks naming one 1 MiB function
 * holds the source once, not 20,000 copies of it. Such a task also holds its source (TASK_SOURCE), so the
 * interchange sends it to a manager by `h` and arguments, the source once per manager (protocol/source-link.ts);
 * the full payload is only built by readers that decode it (MPI admission).
 */
function lazyTask(t: TaskEnvelope, functionId: string, f: FunctionSource, args: Uint8Array): TaskEnvelope {
  const source = f.source;
  // Small sources are built at once: a plain object encodes several times faster than one with a getter.
  if (source.length <= EAGER_SOURCE_CHARS) return envelopeWith(t, encodeJsTask(functionId, source, args)); // `h` dropped: a full payload
  const { h: _h, payload: _p, ...rest } = t;
  (rest as { [TASK_SOURCE]?: unknown })[TASK_SOURCE] = { hash: f.hash, source, args };
  return Object.defineProperty(rest, 'payload', {
    enumerable: true,
    get: () => encodeJsTask(functionId, source, args),
  }) as TaskEnvelope;
}

/**
 * The endpoint's sources from the forwarder: tasks that name their function come out with full payloads (those
 * naming a source not held come back missing: the caller drops them and says hello with `resync`).
 */
export class EndpointSourceCache extends SourceReceiver {
  constructor(budget = ENDPOINT_SOURCES_BUDGET) {
    super(budget, (t, f) => lazyTask(t, t.fn, f, t.payload));
  }
}
