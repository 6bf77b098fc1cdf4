/**
 * A ZAP handler (ZeroMQ RFC 27) that lets a CURVE server accept only known client public keys.
 * Without it, CURVE encrypts but lets any client key in (the flaw of funcX's forwarder).
 *
 * One handler per ZeroMQ context: it binds `inproc://zeromq.zap.01`, so give every server its own Context.
 */
import * as zmq from 'zeromq';
import { z85Encode32 } from './z85.js';

export interface ZapHandlerOptions {
  context: zmq.Context;
  /** Decides per domain whether a client key (Z85) may connect. */
  isAllowed: (domain: string, clientPublicKey: string) => boolean;
  /** Told about each refusal (for logs): domain, peer address, key. */
  onRefused?: (domain: string, address: string, clientPublicKey: string) => void;
}

export class ZapHandler {
  private readonly socket: zmq.Router;
  private closed = false;

  constructor(private readonly options: ZapHandlerOptions) {
    this.socket = new zmq.Router({ context: options.context, linger: 0 });
  }

  async start(): Promise<void> {
    await this.socket.bind('inproc://zeromq.zap.01');
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      for await (const frames of this.socket) {
        // [routing id, empty, version, request id, domain, address, identity, mechanism, credentials...]
        const [routingId, , version, requestId, domain, address, , mechanism, credential] = frames;
        let status = '400';
        let text = 'refused';
        const key = credential ? z85Encode32(credential) : '';
        if (version?.toString() === '1.0' && mechanism?.toString() === 'CURVE' && credential?.length === 32) {
          if (this.options.isAllowed(domain.toString(), key)) {
            status = '200';
            text = 'OK';
          }
        }
        if (status !== '200') this.options.onRefused?.(domain?.toString() ?? '', address?.toString() ?? '', key);
        await this.socket.send([routingId, '', '1.0', requestId ?? '', status, text, status === '200' ? key : '', '']);
      }
    } catch (err) {
      if (!this.closed) throw err;
    }
  }

  close(): void {
    this.closed = true;
    this.socket.close();
  }
}
