/**
 * Sharing is the profile's, through the real service, CLI and daemon: an endpoint whose profile sets
 * `shared_with` is shared after every start (a restart never silently unshares), and removing the line
 * unshares it at the next start. While shared, a member's tasks and the owner's run in different worker
 * processes of the same endpoint.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { FuncXClient } from '../../src/sdk/client.js';
import { api, CliStack, runCli } from './harness.js';

/** A LocalProvider profile that starts no block until there is work (starts stay quick). */
function profile(extra: string): string {
  return `import { Config, LocalProvider } from 'funcx-endpoint';

export default new Config({
  engine: { address: '127.0.0.1', max_workers_per_node: 2, heartbeat_period: 2, heartbeat_threshold: 10 },
  provider: new LocalProvider({ nodes_per_block: 1, init_blocks: 0, min_blocks: 0, max_blocks: 1 }),
  strategy: { period: 1, max_idletime: 60 },
  ${extra}
});
`;
}

/** A stack with alice, carol (a member of alice's group "lab") and alice's function `pid` shared with "lab". */
async function labStack(t: TestContext) {
  const stack = await CliStack.start();
  t.after(() => stack.stop());
  const carolToken = /fx_[A-Za-z0-9_-]+/.exec((await runCli('service', ['user', 'add', 'carol'], stack.env)).stdout)![0];
  const carol = new FuncXClient({ serviceUrl: stack.url, token: carolToken });
  await stack.sdk.createGroup('lab');
  await stack.sdk.addGroupMember('lab', 'carol');
  await carol.acceptInvitation('lab');
  const pid = await stack.sdk.registerFunction(() => process.pid, { name: 'pid', group: 'lab' });
  const group = async (id: string) => (await api(stack.url, stack.token, 'GET', `/v1/endpoints/${id}`)).body.group;
  const restart = async () => {
    await runCli('endpoint', ['stop'], stack.env);
    return stack.startEndpoint();
  };
  return { stack, carol, carolToken, pid, group, restart };
}

test('shared_with is registered at every start: still shared after a restart; member and owner use different workers', async (t) => {
  const { stack, carol, pid, group, restart } = await labStack(t);
  stack.writeProfile(profile(`shared_with: 'lab', allowed_functions: [${JSON.stringify(pid)}],`));
  const id = await stack.startEndpoint();
  assert.equal(await group(id), 'lab');
  assert.equal(await restart(), id);
  assert.equal(await group(id), 'lab', 'still shared after a restart');
  const [carolPid, alicePid] = await Promise.all([carol, stack.sdk].map(async (sdk) => sdk.getResult<number>(await sdk.run(id, pid), { waitMs: 20_000 })));
  assert.notEqual(carolPid, alicePid, 'the member and the owner ran in the same worker process');
});

test('a profile without shared_with unshares the endpoint at its next start', async (t) => {
  const { stack, carolToken, pid, group, restart } = await labStack(t);
  stack.writeProfile(profile(`shared_with: 'lab', allowed_functions: [${JSON.stringify(pid)}],`));
  const id = await stack.startEndpoint();
  assert.equal(await group(id), 'lab');
  stack.writeProfile(profile(`allowed_functions: [${JSON.stringify(pid)}],`));
  assert.equal(await restart(), id);
  assert.equal(await group(id), null, 'unshared once the profile no longer says shared_with');
  const submit = await api(stack.url, carolToken, 'POST', '/v1/tasks', { tasks: [{ endpointId: id, functionId: pid }] });
  assert.equal(submit.status, 403, JSON.stringify(submit.body));
});
