/**
 * Fuzz the worker channel: 10,000 malformed frames from a peer that holds the manager key (so they get past
 * CURVE), plus raw garbage on the TCP port, while a real manager keeps running tasks. The interchange must
 * drop them all, keep serving, and stay within bounded memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import * as zmq from 'zeromq';
import { startEngine, jsTask } from '../helpers/engine-fixture.js';
import { until } from '../helpers/wait.js';
import { decodeOutcome } from '../../src/protocol/payload.js';
import type { ResultEnvelope } from '../../src/protocol/messages.js';
import { malformedFrame, prng } from './frames.js';

const FRAMES = Number(process.env.FUZZ_FRAMES ?? 10_000);

test(`${FRAMES} malformed frames on the worker channel: no crash, well-behaved manager keeps working, memory bounded`, async () => {
  const warnings: string[] = [];
  const { createLogger } = await import('../../src/logger.js');
  const f = await startEngine({ heartbeatPeriodMs: 500, heartbeatThresholdMs: 5000, log: createLogger('fuzz', 'warn', (l) => warnings.push(l)) });
  try {
    f.startManager(['--max-workers', '2', '--block-id', 'good']);
    await until('the good manager', () => f.interchange.registry.size === 1);
    const results: ResultEnvelope[] = [];
    f.interchange.onResults = (rs) => results.push(...rs);
    const rssBefore = process.memoryUsage().rss;

    const rand = prng(20261125);
    const fuzzers: zmq.Dealer[] = [];
    for (let p = 0; p < 4; p++) {
      const s = new zmq.Dealer({
        routingId: `fuzz-${p}`,
        linger: 0,
        sendHighWaterMark: 100_000,
        curveServerKey: f.keys.interchange.publicKey,
        curvePublicKey: f.keys.manager.publicKey,
        curveSecretKey: f.keys.manager.secretKey,
      });
      s.connect(`tcp://127.0.0.1:${f.interchange.port}`);
      fuzzers.push(s);
    }
    // Raw bytes straight at the TCP port: not even a ZeroMQ greeting.
    for (let i = 0; i < 20; i++) {
      const sock = connect(f.interchange.port, '127.0.0.1');
      sock.on('error', () => {});
      // Hang up once the garbage is written (not after a guessed time).
      sock.write(Buffer.from(Array.from({ length: 200 }, () => Math.floor(rand() * 256))), () => sock.destroy());
    }
    let sent = 0;
    for (let i = 0; i < FRAMES; i++) {
      const s = fuzzers[i % fuzzers.length];
      await s.send(malformedFrame(rand, `fuzz-${i % fuzzers.length}`));
      sent++;
      if (i % 500 === 0) f.interchange.submitMany(Array.from({ length: 20 }, (_, k) => jsTask('(x) => x * 3', [k], 'triple')));
    }
    assert.equal(sent, FRAMES);
    const expected = Math.ceil(FRAMES / 500) * 20;
    await until('every task of the good manager', () => results.length >= expected);
    assert.ok(results.every((r) => !r.failed), 'no task of the well-behaved manager failed');
    assert.ok(results.every((r) => [0, 3, 6].includes(((decodeOutcome(r.payload) as { value: number }).value) % 3) ));
    for (const s of fuzzers) s.close();
    assert.equal(f.interchange.state, 'running');
    // The good manager is still registered and serving.
    const again = await f.interchange.submit(jsTask('() => "alive"'));
    assert.deepEqual(decodeOutcome(again.payload), { ok: true, value: 'alive' });
    const grewMiB = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
    assert.ok(grewMiB < 200, `RSS grew by ${grewMiB.toFixed(0)} MiB`);
    // Drops are logged with the peer's identity, and floods are rate-limited (not 10,000 lines).
    assert.ok(warnings.some((w) => /fuzz-\d/.test(w)), 'a warning names the peer');
    assert.ok(warnings.length < 500, `${warnings.length} warning lines`);
  } finally {
    await f.stop();
  }
});
