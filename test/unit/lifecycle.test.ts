/**
 * The lifecycle helper: the table decides, illegal transitions throw naming both states, transitions are
 * logged and told to listeners, `until` waits on a state (and gives up at a terminal one), and `Once` runs
 * its work once for every caller.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Lifecycle, Once, type Transitions } from '../../src/lifecycle.js';
import { IllegalStateError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';

type S = 'created' | 'running' | 'stopping' | 'stopped' | 'failed';
const TABLE: Transitions<S> = {
  created: ['running', 'stopping', 'failed'],
  running: ['stopping', 'failed'],
  stopping: ['stopped', 'failed'],
  stopped: [],
  failed: [],
};

function recordingLog(lines: string[]): Logger {
  const log: Logger = {
    level: 'debug',
    debug: (m) => lines.push(`debug ${m}`),
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    error: (m) => lines.push(`error ${m}`),
    child: () => log,
  };
  return log;
}

test('legal transitions move, are logged at debug and told to listeners in order', () => {
  const lines: string[] = [];
  const life = new Lifecycle<S>('thing', 'created', TABLE, { log: recordingLog(lines) });
  const seen: string[] = [];
  const off = life.onChange((next, previous) => seen.push(`${previous}>${next}`));
  life.to('running');
  life.to('stopping', 'asked to');
  off();
  life.to('stopped');
  assert.equal(life.state, 'stopped');
  assert.ok(life.terminal);
  assert.deepEqual(seen, ['created>running', 'running>stopping'], 'a removed listener hears nothing more');
  assert.deepEqual(lines, ['debug state created → running', 'debug state running → stopping: asked to', 'debug state stopping → stopped']);
});

test('the log level is the caller’s choice', () => {
  const lines: string[] = [];
  const life = new Lifecycle<S>('thing', 'created', TABLE, { log: recordingLog(lines), level: 'info' });
  life.to('running');
  assert.deepEqual(lines, ['info state created → running']);
});

test('an illegal transition throws IllegalStateError naming both states and changes nothing', () => {
  const life = new Lifecycle<S>('engine', 'created', TABLE);
  life.to('failed');
  assert.throws(() => life.to('stopped'), (err: unknown) => {
    assert.ok(err instanceof IllegalStateError);
    assert.match((err as Error).message, /engine: illegal transition failed → stopped/);
    return true;
  });
  assert.equal(life.state, 'failed', 'failed is not overwritten by stopped');
  assert.equal(life.tryTo('stopped'), false);
  assert.equal(life.state, 'failed');
  assert.equal(new Lifecycle<S>('x', 'running', TABLE).tryTo('stopping'), true);
});

test('every state of the table is checked: exactly the listed moves are allowed', () => {
  const states = Object.keys(TABLE) as S[];
  for (const from of states) {
    for (const to of states) {
      const life = new Lifecycle<S>('x', from, TABLE);
      const allowed = TABLE[from].includes(to);
      if (allowed) life.to(to);
      else assert.throws(() => life.to(to), IllegalStateError, `${from} → ${to}`);
    }
  }
});

test('until resolves on the state (at once when already there) and rejects at a terminal state that is not it', async () => {
  const life = new Lifecycle<S>('daemon', 'created', TABLE);
  assert.equal(await life.until('created'), 'created');
  const running = life.until('running', 'stopped');
  const stopped = life.until('stopped');
  life.to('running');
  assert.equal(await running, 'running');
  life.to('failed');
  await assert.rejects(stopped, /daemon ended in state failed, never stopped/);
  await assert.rejects(life.until('running'), IllegalStateError);
});

test('Once: the first caller starts the work, every caller awaits the same promise; the work runs once', async () => {
  const once = new Once<string>();
  assert.equal(once.started, false);
  let runs = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const work = (label: string) => async () => {
    runs++;
    await gate;
    return label;
  };
  const first = once.run(work('first'));
  const second = once.run(work('second'));
  assert.equal(first, second, 'one promise for every caller');
  assert.equal(once.started, true);
  let settled = false;
  void second.then(() => (settled = true));
  await Promise.resolve();
  assert.equal(settled, false, 'a second call waits for the first stop, it does not return at once');
  release();
  assert.deepEqual(await Promise.all([first, second, once.run(work('third'))]), ['first', 'first', 'first']);
  assert.equal(runs, 1);
});

test('Once: a failing work (even a synchronous throw) rejects every caller with the same error', async () => {
  const once = new Once();
  const a = once.run(() => {
    throw new Error('boom');
  });
  const b = once.run(async () => {});
  await assert.rejects(a, /boom/);
  await assert.rejects(b, /boom/);
});
