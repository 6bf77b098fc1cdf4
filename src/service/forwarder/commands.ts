/**
 * The commands a forwarder sent its endpoint (status, stop) and is waiting on, by command id: answered by
 * the endpoint's reply, failed by a timeout or by the endpoint going away.
 */
import { randomUUID } from 'node:crypto';
import { encode } from '../../protocol/codec.js';
import type { CommandReplyMessage, EndpointCommand } from '../../protocol/forwarder-messages.js';
import type { SocketWriter } from '../../protocol/socket-writer.js';
import { FuncxError } from '../../errors.js';

interface Pending {
  resolve: (r: CommandReplyMessage) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class PendingCommands {
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly endpointId: string) {}

  /** Send `command` to the endpoint's commands socket `peer`; resolves with its reply, or fails after `timeoutMs`. */
  ask(writer: SocketWriter, peer: Buffer, command: EndpointCommand, timeoutMs: number): Promise<CommandReplyMessage> {
    const id = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new FuncxError('COMMAND_TIMEOUT', `endpoint ${this.endpointId} did not answer "${command.name}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      writer.send([peer, encode({ kind: 'command', id, command })]);
    });
  }

  /** The endpoint replied (a reply to a command that timed out is dropped). */
  answer(m: CommandReplyMessage): void {
    const pending = this.pending.get(m.id);
    if (!pending) return;
    this.pending.delete(m.id);
    clearTimeout(pending.timer);
    pending.resolve(m);
  }

  /** The endpoint went away: every command still waiting fails. */
  rejectAll(): void {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new FuncxError('ENDPOINT_NOT_CONNECTED', `endpoint ${this.endpointId} went away`));
      this.pending.delete(id);
    }
  }
}
