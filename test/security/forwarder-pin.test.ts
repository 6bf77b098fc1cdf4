/**
 * The endpoint pins the forwarder key it first learnt (KEYS/forwarder-pin.json, 0600) and refuses another
 * one: a service answering at the endpoint's service URL with another key (a hijacked name, a man in the
 * middle of plain HTTP) gets no connection. `funcx-endpoint start --reset-forwarder-key` trusts the new one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { registerEndpoint } from '../../src/endpoint/service-link/registration.js';
import { forwarderPinPath, resetForwarderPin } from '../../src/endpoint/service-link/forwarder-pin.js';
import { newKeyPair, readKeyPair, writeKeyPair } from '../../src/protocol/keys.js';
import { addUser, CliStack, inProcessService, localProfile, runCli, tmpDir } from './harness.js';

test('a registration answered with another forwarder key than the pinned one is refused', async (t) => {
  const s1 = await inProcessService(t);
  const home2 = tmpDir('service');
  const s2 = await inProcessService(t, { home: home2 });
  const alice1 = await addUser(s1, 'alice');
  const alice2 = await addUser(s2, 'alice');
  const dir = tmpDir('pin');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pinFile = forwarderPinPath(join(dir, 'keys'));
  const key = newKeyPair().publicKey;

  const first = await registerEndpoint(s1.url, alice1.token, { name: 'ep', publicKey: key }, { pinFile });
  assert.equal(statSync(pinFile).mode & 0o777, 0o600);
  const pin = JSON.parse(readFileSync(pinFile, 'utf8')) as { publicKey: string; serviceUrl: string };
  assert.equal(pin.publicKey, first.forwarder.publicKey);
  assert.equal(pin.serviceUrl, s1.url);
  // The same service again: the same key, accepted.
  await registerEndpoint(s1.url, alice1.token, { name: 'ep', endpointId: first.endpointId, publicKey: key }, { pinFile });

  // Another service (another forwarder key) in its place: refused, the pin unchanged.
  assert.notEqual(readKeyPair(join(home2, 'keys', 'forwarder.json')).publicKey, pin.publicKey);
  await assert.rejects(
    registerEndpoint(s2.url, alice2.token, { name: 'ep', publicKey: key }, { pinFile }),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'FORWARDER_KEY_CHANGED');
      assert.match(err.message, /not the key .* this endpoint pinned/);
      return true;
    },
  );
  assert.equal((JSON.parse(readFileSync(pinFile, 'utf8')) as { publicKey: string }).publicKey, pin.publicKey);

  // Reset: the new key is pinned.
  assert.equal(resetForwarderPin(pinFile), true);
  const second = await registerEndpoint(s2.url, alice2.token, { name: 'ep', publicKey: key }, { pinFile });
  assert.equal((JSON.parse(readFileSync(pinFile, 'utf8')) as { publicKey: string }).publicKey, second.forwarder.publicKey);
});

test('funcx-endpoint start refuses a service whose forwarder key changed, until --reset-forwarder-key', async (t) => {
  const stack = await CliStack.start();
  t.after(() => stack.stop());
  stack.writeProfile(localProfile());
  await stack.startEndpoint();
  const pinFile = forwarderPinPath(join(stack.home, 'default', 'keys'));
  assert.equal(statSync(pinFile).mode & 0o777, 0o600);
  const pinned = (JSON.parse(readFileSync(pinFile, 'utf8')) as { publicKey: string }).publicKey;
  assert.equal(pinned, readKeyPair(join(stack.serviceHome, 'keys', 'forwarder.json')).publicKey);

  // The service comes back at the same address with another forwarder key.
  await stack.stopProcesses();
  rmSync(join(stack.serviceHome, 'keys', 'forwarder.json'));
  const port = new URL(stack.url).port;
  await stack.restartService(port);
  const env = { ...stack.env, FUNCX_TOKEN: stack.token };
  await assert.rejects(runCli('endpoint', ['start'], env), /FORWARDER_KEY_CHANGED|not the key .* this endpoint pinned/);
  assert.equal((JSON.parse(readFileSync(pinFile, 'utf8')) as { publicKey: string }).publicKey, pinned, 'the pin is unchanged');

  const started = await stack.startEndpointWith(['--reset-forwarder-key']);
  assert.match(started.stdout, /Forgot the forwarder key/);
  assert.match(started.stdout, /is Active/);
  const now = (JSON.parse(readFileSync(pinFile, 'utf8')) as { publicKey: string }).publicKey;
  assert.notEqual(now, pinned);
  assert.equal(now, readKeyPair(join(stack.serviceHome, 'keys', 'forwarder.json')).publicKey);
});

test('--forwarder-key: replicas given one key file present one key; a key file others can read is refused', async (t) => {
  const dir = tmpDir('shared-key');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'forwarder.json');
  writeKeyPair(file, newKeyPair());
  const a = await inProcessService(t, { forwarderKeyFile: file });
  const b = await inProcessService(t, { home: tmpDir('service'), forwarderKeyFile: file });
  const key = newKeyPair().publicKey;
  const onA = await registerEndpoint(a.url, (await addUser(a, 'alice')).token, { name: 'ep', publicKey: key });
  const onB = await registerEndpoint(b.url, (await addUser(b, 'alice')).token, { name: 'ep', publicKey: key });
  assert.equal(onA.forwarder.publicKey, readKeyPair(file).publicKey);
  assert.equal(onB.forwarder.publicKey, onA.forwarder.publicKey);

  chmodSync(file, 0o644);
  await assert.rejects(inProcessService(t, { home: tmpDir('service'), forwarderKeyFile: file }), /--forwarder-key .*forwarder\.json: readable by others \(mode 644\)/);
  await assert.rejects(inProcessService(t, { home: tmpDir('service'), forwarderKeyFile: join(dir, 'absent.json') }), /--forwarder-key .*absent\.json: no such file/);
});
