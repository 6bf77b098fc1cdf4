/** The raw ZeroMQ baseline's far side: a DEALER that echoes every message it gets (run as a child process). */
import * as zmq from 'zeromq';

const socket = new zmq.Dealer({ linger: 0, sendHighWaterMark: 100_000, receiveHighWaterMark: 100_000 });
socket.connect(process.argv[2]);
await socket.send('hello');
for await (const [msg] of socket) {
  if (msg.length === 4 && msg.toString() === 'stop') break;
  await socket.send(msg);
}
socket.close();
