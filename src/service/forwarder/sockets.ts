/**
 * A forwarder's sockets: one CURVE ROUTER per channel, vetted by the forwarder's ZAP handler, bound on the
 * port the endpoint knows when it is free again.
 */
import * as zmq from 'zeromq';
import { MAX_FRAME_BYTES } from '../../protocol/codec.js';
import type { CurveKeyPair } from '../../protocol/keys.js';
import { FuncxError } from '../../errors.js';

/** Binds of a forwarder's preferred port, 25 ms apart, before it takes another. */
const PREFERRED_PORT_TRIES = 20;

/** A CURVE server ROUTER in the forwarder's context (its ZAP domain is the forwarder's). */
export function openRouter(context: zmq.Context, keys: CurveKeyPair): zmq.Router {
  return new zmq.Router({
    context,
    curveServer: true,
    curvePublicKey: keys.publicKey,
    curveSecretKey: keys.secretKey,
    zapDomain: 'funcx-forwarder',
    linger: 0,
    maxMessageSize: MAX_FRAME_BYTES,
    sendHighWaterMark: 10_000,
    receiveHighWaterMark: 10_000,
  });
}

/**
 * Bind `socket` on `preferred` (the previous run's port), else on the first free port of `range`, else on an
 * OS-chosen port when there is no range. Returns the port bound.
 */
export async function bindPort(socket: zmq.Router, host: string, preferred: number | undefined, range: readonly [number, number] | undefined): Promise<number> {
  const candidates: number[] = [];
  if (preferred) candidates.push(preferred);
  if (range) {
    for (let p = range[0]; p <= range[1]; p++) if (p !== preferred) candidates.push(p);
  } else {
    candidates.push(0);
  }
  for (const port of candidates) {
    // The preferred port was this endpoint's until a moment ago (a re-keyed forwarder closed just before):
    // ZeroMQ releases it from its I/O thread, so give it a few tries before moving the endpoint elsewhere,
    // where connections made with an old key would find nobody rather than be refused.
    const tries = port === preferred ? PREFERRED_PORT_TRIES : 1;
    for (let attempt = 1; attempt <= tries; attempt++) {
      try {
        await socket.bind(`tcp://${host}:${port}`);
        return Number(/:(\d+)$/.exec(socket.lastEndpoint ?? '')?.[1]);
      } catch (err) {
        if (port === 0) throw new FuncxError('FORWARDER_BIND', `cannot bind the forwarder on ${host}: ${(err as Error).message}`);
        if (attempt < tries) await new Promise((r) => setTimeout(r, 25));
      }
    }
  }
  throw new FuncxError('FORWARDER_BIND', `no free forwarder port on ${host}${range ? ` in ${range[0]}-${range[1]}` : ''}`);
}
