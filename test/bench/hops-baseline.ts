/**
 * The tail's baseline: a pipeline with the engine's hops and nothing else, measured in the same run as the
 * engine. This process's CURVE ROUTER → a DEALER process (hops-relay.js) → its child over a socket pair on
 * fd 3 (length-prefixed frames) → back the same way. Sequential round trips of a 100-byte message.
 */
import * as zmq from 'zeromq';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { percentile } from './engine-bench.js';

export interface HopsFigures {
  hops_latency_p50_ms: number;
  hops_latency_p99_ms: number;
}

export async function hopsLatency(samples = 500, warmup = 50): Promise<HopsFigures> {
  const server = zmq.curveKeyPair();
  const client = zmq.curveKeyPair();
  const router = new zmq.Router({ linger: 0, curveServer: true, curvePublicKey: server.publicKey, curveSecretKey: server.secretKey });
  await router.bind('tcp://127.0.0.1:0');
  const child = spawn(process.execPath, [fileURLToPath(new URL('./hops-relay.js', import.meta.url)), router.lastEndpoint!], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, HOPS_SERVER_KEY: server.publicKey, HOPS_PUBLIC_KEY: client.publicKey, HOPS_SECRET_KEY: client.secretKey },
  });
  const iterator = router[Symbol.asyncIterator]();
  const hello = (await iterator.next()).value as Buffer[];
  const peer = hello[0];
  const message = Buffer.alloc(100, 7);
  const lat: number[] = [];
  for (let i = 0; i < samples + warmup; i++) {
    const t = performance.now();
    await router.send([peer, message]);
    await iterator.next();
    if (i >= warmup) lat.push(performance.now() - t);
  }
  await router.send([peer, 'stop']);
  await new Promise((r) => child.once('exit', r));
  router.close();
  lat.sort((a, b) => a - b);
  return { hops_latency_p50_ms: percentile(lat, 50), hops_latency_p99_ms: percentile(lat, 99) };
}
