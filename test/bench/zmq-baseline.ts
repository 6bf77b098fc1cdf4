/**
 * The raw baseline: pipelined ROUTER/DEALER round trips of a 100-byte message between two Node processes,
 * one message per send, a window of 1,000 in flight.
 */
import * as zmq from 'zeromq';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export async function zmqRoundTripsPerSecond(total = 100_000, window = 1000): Promise<number> {
  const router = new zmq.Router({ linger: 0, sendHighWaterMark: 100_000, receiveHighWaterMark: 100_000 });
  await router.bind('tcp://127.0.0.1:0');
  const child = spawn(process.execPath, [fileURLToPath(new URL('./zmq-echo.js', import.meta.url)), router.lastEndpoint!], { stdio: 'inherit' });
  const iterator = router[Symbol.asyncIterator]();
  const hello = (await iterator.next()).value as Buffer[];
  const peer = hello[0];
  const message = Buffer.alloc(100, 7);
  let sent = 0;
  let received = 0;
  const t0 = performance.now();
  while (sent < Math.min(window, total)) {
    await router.send([peer, message]);
    sent++;
  }
  while (received < total) {
    await iterator.next();
    received++;
    if (sent < total) {
      await router.send([peer, message]);
      sent++;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  await router.send([peer, 'stop']);
  await new Promise((r) => child.once('exit', r));
  router.close();
  return total / seconds;
}
