/**
 * Simulated managers: many lightweight manager connections in one process, each claiming `workers` workers
 * and answering every task at once with a null result. Used to show one endpoint holding 131,072 workers.
 *
 * Usage (a child of the scale bench): sim-managers.js PORT KEYFILE COUNT WORKERS PREFIX HEARTBEAT_MS
 * Prints "ready N" on stdout once every manager is registered.
 */
import * as zmq from 'zeromq';
import { encode } from '../../src/protocol/codec.js';
import { PROTOCOL_VERSION, parseFromInterchange, type ResultEnvelope } from '../../src/protocol/messages.js';
import { readManagerKeyFile } from '../../src/protocol/keys.js';
import { encodeOutcome } from '../../src/protocol/payload.js';

const [port, keyFile, countArg, workersArg, prefix, heartbeatArg] = process.argv.slice(2);
const keys = readManagerKeyFile(keyFile);
const count = Number(countArg);
const workers = Number(workersArg);
const heartbeatMs = Number(heartbeatArg);
const NULL_RESULT = encodeOutcome({ ok: true, value: null });
const beat = encode({ kind: 'heartbeat' });
const sockets: zmq.Dealer[] = [];
let registered = 0;

async function serve(i: number): Promise<void> {
  const id = `${prefix}-${i}`;
  const socket = new zmq.Dealer({
    routingId: id,
    linger: 0,
    curveServerKey: keys.serverPublicKey,
    curvePublicKey: keys.publicKey,
    curveSecretKey: keys.secretKey,
    sendHighWaterMark: 10_000,
  });
  sockets.push(socket);
  socket.connect(`tcp://127.0.0.1:${port}`);
  await socket.send(
    encode({ kind: 'register', protocol: PROTOCOL_VERSION, managerId: id, hostname: 'sim', blockId: prefix, node: id, workers, cores: workers, memoryMiB: 0, capacity: workers, endsAt: null, pid: process.pid }),
  );
  for await (const [frame] of socket) {
    const message = parseFromInterchange(frame);
    if (message.kind === 'registered') {
      if (++registered === count) process.stdout.write(`ready ${count}\n`);
    } else if (message.kind === 'tasks') {
      const results: ResultEnvelope[] = message.tasks.map((t) => ({ id: t.id, failed: false, payload: NULL_RESULT }));
      await socket.send(encode({ kind: 'results', results }));
    } else if (message.kind === 'shutdown') {
      break;
    }
  }
  socket.close();
}

for (let i = 0; i < count; i++) void serve(i);
setInterval(() => {
  for (const s of sockets) if (!s.closed) s.send(beat).catch(() => {});
}, heartbeatMs).unref();
process.on('SIGTERM', () => process.exit(0));
