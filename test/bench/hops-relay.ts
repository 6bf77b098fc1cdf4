/**
 * hops-baseline's middle: a CURVE DEALER that hands each message to its child over a socket pair (fd 3,
 * length-prefixed) and sends back what the child returns; run with `child` as the child itself (an echo).
 */
import * as zmq from 'zeromq';
import { spawn } from 'node:child_process';
import { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

function framed(body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/** Calls `onFrame` for every whole length-prefixed frame of the stream. */
function frames(stream: Socket, onFrame: (b: Buffer) => void): void {
  let pending: Buffer = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 4 && pending.length - 4 >= pending.readUInt32BE(0)) {
      const n = pending.readUInt32BE(0);
      onFrame(pending.subarray(4, 4 + n));
      pending = pending.subarray(4 + n);
    }
  });
}

if (process.argv[2] === 'child') {
  const pipe = new Socket({ fd: 3, readable: true, writable: true });
  frames(pipe, (b) => pipe.write(framed(Buffer.from(b))));
  pipe.on('end', () => process.exit(0));
} else {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'child'], { stdio: ['ignore', 'inherit', 'inherit', 'pipe'] });
  const pipe = child.stdio[3] as Socket;
  const socket = new zmq.Dealer({
    linger: 0,
    curveServerKey: process.env.HOPS_SERVER_KEY,
    curvePublicKey: process.env.HOPS_PUBLIC_KEY,
    curveSecretKey: process.env.HOPS_SECRET_KEY,
  });
  socket.connect(process.argv[2]);
  frames(pipe, (b) => void socket.send(Buffer.from(b)));
  await socket.send('hello');
  for await (const [msg] of socket) {
    if (msg.length === 4 && msg.toString() === 'stop') break;
    pipe.write(framed(msg));
  }
  pipe.end();
  socket.close();
}
