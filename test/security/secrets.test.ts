/**
 * Secrets on disk and on display, with the real programs (as examples/demo.ts drives them): after tasks ran,
 * the token and every CURVE secret key live only in the files meant to hold them (0600, keys folders 0700),
 * and appear in no other file of either home (logs, submit scripts, block output, the service's database)
 * nor in any process's command line. The processes that run functions do not inherit the token either: on
 * an endpoint shared with a group, other people's functions run there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ShellFunction } from '../../src/sdk/functions.js';
import { CliStack, localProfile, until } from './harness.js';

/** Every file under `dir`, recursively. */
function walk(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(p));
    else if (entry.isFile()) out.push(p);
  }
  return out;
}

const mode = (path: string): string => (statSync(path).mode & 0o777).toString(8).padStart(4, '0');

/** Command lines of every process we can read, by pid. */
function commandLines(): Map<number, string> {
  const out = new Map<number, string>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      out.set(Number(name), readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' '));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

test('the token and CURVE secret keys stay in their 0600 files: not in logs, scripts, the database or ps', async (t) => {
  const stack = await CliStack.start();
  t.after(() => stack.stop());
  stack.writeProfile(localProfile());
  const endpointId = await stack.startEndpoint();
  const sdk = stack.sdk;
  const fn = await sdk.registerFunction((x: number) => x + 1, { name: 'inc' });
  const boom = await sdk.registerFunction(() => {
    throw new Error('a failing task, so error paths are logged too');
  }, { name: 'boom' });
  assert.equal(await sdk.getResult(await sdk.run(endpointId, fn, 1), { waitMs: 30_000 }), 2);
  await assert.rejects(sdk.getResult(await sdk.run(endpointId, boom), { waitMs: 30_000 }), /failing task/);
  const shell = await sdk.getResult<{ returncode: number }>(await sdk.run(endpointId, ShellFunction('echo hi')), { waitMs: 30_000 });
  assert.equal(shell.returncode, 0);

  // While the block runs: command lines of every process (the daemon, managers, workers included).
  const lines = commandLines();
  const ours = [...lines.values()].filter((l) => l.includes(stack.root) || /cli\/(manager|worker|endpoint-daemon)\.js/.test(l));
  assert.ok(ours.some((l) => /cli\/manager\.js/.test(l)), `no funcx-manager process found among:\n${ours.join('\n')}`);

  const profile = join(stack.home, 'default');
  const keysDir = join(profile, 'keys');
  // forwarder-pin.json holds the forwarder's public key only (checked below).
  const keyFiles = readdirSync(keysDir).filter((f) => f.endsWith('.json') && f !== 'forwarder-pin.json').map((f) => join(keysDir, f));
  assert.equal(mode(join(keysDir, 'forwarder-pin.json')), '0600');
  assert.equal((JSON.parse(readFileSync(join(keysDir, 'forwarder-pin.json'), 'utf8')) as { secretKey?: string }).secretKey, undefined);
  const serviceKeys = join(stack.serviceHome, 'keys');
  const secretHolders = new Set([join(stack.home, 'credentials.json'), ...keyFiles, join(serviceKeys, 'forwarder.json')]);
  assert.deepEqual(readdirSync(keysDir).sort(), ['endpoint.json', 'forwarder-pin.json', 'interchange.json', 'manager-key.json', 'manager.json']);

  // Permissions.
  for (const file of secretHolders) assert.equal(mode(file), '0600', `${file} is ${mode(file)}`);
  for (const dir of [keysDir, serviceKeys]) assert.equal(mode(dir), '0700', `${dir} is ${mode(dir)}`);
  assert.equal(mode(join(stack.serviceHome, 'service.db')), '0600');

  // The secrets themselves.
  const secrets = new Map<string, string>([['the user token', stack.token]]);
  assert.equal(JSON.parse(readFileSync(join(stack.home, 'credentials.json'), 'utf8')).token, stack.token);
  for (const file of [...keyFiles, join(serviceKeys, 'forwarder.json')]) {
    const secretKey = (JSON.parse(readFileSync(file, 'utf8')) as { secretKey?: string }).secretKey;
    assert.ok(secretKey && secretKey.length === 40, `${file} holds a secret key`);
    secrets.set(`the secret key in ${relative(stack.root, file)}`, secretKey);
  }

  const check = (where: string, text: string) => {
    for (const [what, value] of secrets) assert.ok(!text.includes(value), `${what} appears in ${where}`);
  };
  for (const [pid, line] of lines) check(`the command line of pid ${pid}: ${line.slice(0, 200)}`, line);

  // Stop, so the logs hold the whole run (shutdown included), then read every other file of both homes.
  await stack.stopProcesses();
  const files = [...walk(stack.home), ...walk(stack.serviceHome)].filter((f) => !secretHolders.has(f));
  const names = files.map((f) => relative(stack.root, f));
  for (const expected of ['home/default/endpoint.log', 'service/service.log', 'service/service.db']) assert.ok(names.includes(expected), `${expected} exists`);
  assert.ok(names.some((n) => /submit_scripts\/.*\.sh$/.test(n)), `a submit script was written: ${names.join(', ')}`);
  for (const file of files) check(relative(stack.root, file), readFileSync(file, 'latin1'));
});

test("functions do not inherit the endpoint owner's token (other users' functions run on shared endpoints)", async (t) => {
  const stack = await CliStack.start();
  t.after(() => stack.stop());
  stack.writeProfile(localProfile());
  const endpointId = await stack.startEndpoint();
  const probe = await stack.sdk.registerFunction(
    (token: string) => Object.entries(process.env).filter(([, v]) => v !== undefined && v.includes(token)).map(([k]) => k),
    { name: 'probe' },
  );
  const names = await stack.sdk.getResult<string[]>(await stack.sdk.run(endpointId, probe, stack.token), { waitMs: 30_000 });
  assert.deepEqual(names, [], `the worker's environment holds the token in ${names.join(', ')}`);
  // The same check on every process of the block, from outside.
  await until('the block processes', () => [...commandLines().values()].some((l) => /cli\/worker\.js/.test(l)));
  for (const [pid, line] of commandLines()) {
    if (!/cli\/(manager|worker)\.js/.test(line)) continue;
    let environ = '';
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    } catch {
      continue;
    }
    if (!environ.includes(stack.home)) continue; // another test's block
    assert.ok(!environ.includes(stack.token), `pid ${pid} (${line.slice(0, 120)}) has the token in its environment`);
  }
});
