/**
 * Channels against real processes: LocalChannel with /bin/sh, SSHChannel against the test sshd on
 * 127.0.0.1:2222 (started by test/cluster/start-sshd.sh; the test fails if it cannot be started).
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import ssh2 from 'ssh2';
import { FuncxError, IllegalStateError } from '../../src/errors.js';
import { LocalChannel } from '../../providers/channels/local.js';
import { SSHChannel, type SSHChannelOptions } from '../../providers/channels/ssh.js';
import { knownHostName } from '../../providers/channels/known-hosts.js';
import { ensureSshd, type SshdInfo } from './cluster-setup.js';
import { until } from '../helpers/wait.js';

const work = mkdtempSync(join(tmpdir(), 'funcx-channels-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** True while the process exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** A loopback server answering each line with "pong:<line>". */
async function pongServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.setEncoding('utf8');
    s.on('data', (d: string) => s.end(`pong:${d.trim()}\n`));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

describe('LocalChannel', () => {
  const ch = new LocalChannel({ script_dir: join(work, 'local-scripts') });

  test('runs a command and reports stdout, stderr and the exit code', async () => {
    const r = await ch.run('echo out; echo err >&2; exit 3');
    assert.deepEqual(r, { code: 3, stdout: 'out\n', stderr: 'err\n', timedOut: false });
  });

  test('passes env, cwd and stdin', async () => {
    const r = await ch.run('echo "$GREETING"; pwd; cat', { env: { GREETING: "it's here" }, cwd: work, stdin: 'from stdin' });
    assert.equal(r.stdout, `it's here\n${work}\nfrom stdin`);
    assert.equal(r.code, 0);
  });

  test('a timeout kills the whole process group', async () => {
    const pidFile = join(work, 'bg.pid');
    const t0 = Date.now();
    const r = await ch.run(`sleep 30 & echo $! > ${pidFile}; sleep 30`, { timeoutMs: 1000 });
    assert.equal(r.timedOut, true);
    assert.equal(r.code, null);
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
    const bgPid = Number(readFileSync(pidFile, 'utf8'));
    await until(`background sleep ${bgPid} to be killed with its group at the timeout`, () => !alive(bgPid), { timeoutMs: 20_000 }); // well before the sleep ends by itself (30 s)
  });

  test('a background process holding stdout does not keep run() waiting', async () => {
    const t0 = Date.now();
    const r = await ch.run('sleep 3 & echo started');
    assert.equal(r.stdout, 'started\n');
    assert.equal(r.code, 0);
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
  });

  test('a missing working folder is reported, not thrown', async () => {
    const r = await ch.run('true', { cwd: join(work, 'missing') });
    assert.equal(r.code, 127);
    assert.match(r.stderr, /missing/);
  });

  test('writeFile creates folders and sets the mode despite the umask; readFile reads it back', async () => {
    const path = await ch.writeFile('sub/job.sh', '#!/bin/sh\necho hi\n', 0o700);
    assert.equal(path, join(work, 'local-scripts', 'sub', 'job.sh'));
    assert.equal(statSync(path).mode & 0o777, 0o700);
    assert.equal((await ch.readFile(path)).toString(), '#!/bin/sh\necho hi\n');
    const again = await ch.writeFile(path, 'x', 0o640);
    assert.equal(statSync(again).mode & 0o777, 0o640);
    assert.equal((await ch.readFile(again)).toString(), 'x');
  });

  test('exposePort returns the address unchanged', async () => {
    assert.deepEqual(await ch.exposePort('127.0.0.1', 5555), { host: '127.0.0.1', port: 5555 });
    assert.equal(ch.isRemote, false);
  });
});

describe('SSHChannel (real sshd on 127.0.0.1:2222)', () => {
  let sshd: SshdInfo;
  let ch: SSHChannel;
  const remoteDir = join(work, 'remote-scripts');
  const options = (extra: Partial<SSHChannelOptions> = {}): SSHChannelOptions => ({
    hostname: sshd.host, port: sshd.port, username: sshd.username, key_filename: sshd.keyPath,
    known_hosts: sshd.knownHostsPath, agent: false, script_dir: remoteDir, connect_timeout: 10, ...extra,
  });

  before(async () => {
    sshd = await ensureSshd();
    ch = new SSHChannel(options());
  });
  after(async () => ch?.close());

  test('runs commands over one connection, with quotes, ! and newlines intact', async () => {
    const r = await ch.run("echo 'single' \"double\" 'bang!'\necho line2; echo err >&2; exit 4");
    assert.deepEqual(r, { code: 4, stdout: 'single double bang!\nline2\n', stderr: 'err\n', timedOut: false });
    const pids = await Promise.all([ch.run('echo $PPID'), ch.run('echo $PPID')]);
    // Each command is a session of the same connection: sshd serves them from one process.
    assert.equal(pids[0].stdout, pids[1].stdout);
  });

  test('passes env, cwd and stdin', async () => {
    const r = await ch.run('echo "$V"; pwd; cat', { env: { V: "a 'quoted' $value" }, cwd: work, stdin: 'in' });
    assert.equal(r.stdout, `a 'quoted' $value\n${work}\nin`);
  });

  test('a timeout kills the remote process group', async () => {
    // The timeout must leave the remote shell time to start and print the pid (an SSH exec on a loaded machine
    // can take a second); the sleep outlives it by far.
    const r = await ch.run('sleep 30 & echo $!; wait', { timeoutMs: 3000 });
    assert.equal(r.timedOut, true);
    assert.equal(r.code, null);
    const pid = Number(r.stdout.trim());
    assert.ok(pid > 0, `no pid in ${JSON.stringify(r.stdout)}`);
    await until(`remote sleep ${pid} to be killed with its group at the timeout`, () => !alive(pid), { timeoutMs: 20_000 }); // well before the sleep ends by itself (30 s)
  });

  test('writeFile and readFile over SFTP, relative paths in script_dir, mode applied', async () => {
    const path = await ch.writeFile('deep/job.sh', '#!/bin/sh\necho remote\n', 0o750);
    assert.equal(path, join(remoteDir, 'deep', 'job.sh'));
    assert.equal(statSync(path).mode & 0o777, 0o750);
    assert.equal((await ch.readFile('deep/job.sh')).toString(), '#!/bin/sh\necho remote\n');
    assert.equal((await ch.run(path)).stdout, 'remote\n');
    await assert.rejects(ch.readFile('deep/none'), (e: FuncxError) => e.code === 'SSH_FILE' && /deep\/none/.test(e.message));
  });

  test('script_dir under ~ becomes absolute from the remote $HOME once connected', async () => {
    const c = new SSHChannel(options({ script_dir: '~/.funcx/submit_scripts' }));
    try {
      assert.equal(c.scriptDir, '~/.funcx/submit_scripts');
      await c.connect();
      assert.equal(c.scriptDir, `${process.env.HOME ?? '/root'}/.funcx/submit_scripts`);
    } finally {
      await c.close();
    }
  });

  test('reverse forward: a process on the remote side reaches a server on the local side', async () => {
    const { server, port } = await pongServer();
    try {
      const exposed = await ch.exposePort('127.0.0.1', port);
      assert.equal(exposed.host, '127.0.0.1');
      assert.notEqual(exposed.port, port);
      const r = await ch.run(`bash -c 'exec 3<>/dev/tcp/127.0.0.1/${exposed.port}; echo ping >&3; head -n1 <&3'`, { timeoutMs: 10_000 });
      assert.equal(r.stdout, 'pong:ping\n', r.stderr);
    } finally {
      server.close();
    }
  });

  test('relay_address: a relay on the remote side leads to the forward', async () => {
    const { server, port } = await pongServer();
    const c = new SSHChannel(options({ relay_address: '127.0.0.1' }));
    try {
      const exposed = await c.exposePort('127.0.0.1', port);
      const r = await c.run(`bash -c 'exec 3<>/dev/tcp/${exposed.host}/${exposed.port}; echo relay >&3; head -n1 <&3'`, { timeoutMs: 10_000 });
      assert.equal(r.stdout, 'pong:relay\n', r.stderr);
    } finally {
      await c.close();
      server.close();
    }
  });

  test('a dropped connection is re-established and the forward keeps its port', async () => {
    const { server, port } = await pongServer();
    const c = new SSHChannel(options());
    try {
      const exposed = await c.exposePort('127.0.0.1', port);
      // $PPID is the sshd process serving this connection: killing it drops the connection.
      const dropped = await c.run('kill -9 $PPID; sleep 5');
      assert.equal(dropped.code, null);
      assert.match(dropped.stderr, /connection .* lost/);
      const probe = `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${exposed.port}; echo back >&3; head -n1 <&3'`;
      await until('the forward to come back after the reconnect', async () => (await c.run(probe, { timeoutMs: 5000 })).stdout === 'pong:back\n');
    } finally {
      await c.close();
      server.close();
    }
  });

  test('a wrong key in known_hosts refuses the connection and says it CHANGED', async () => {
    const other = ssh2.utils.generateKeyPairSync('ed25519').public.split(' ').slice(0, 2).join(' ');
    const file = join(work, 'known_hosts_wrong');
    writeFileSync(file, `[127.0.0.1]:2222 ${other}\n`);
    const c = new SSHChannel(options({ known_hosts: file }));
    await assert.rejects(c.run('true'), (e: FuncxError) => {
      assert.equal(e.code, 'SSH_HOST_KEY');
      assert.match(e.message, /CHANGED/);
      assert.ok(e.message.includes(file), e.message);
      return true;
    });
    await c.close();
  });

  test('an empty known_hosts refuses the unknown host; a missing file is named', async () => {
    const empty = join(work, 'known_hosts_empty');
    writeFileSync(empty, '');
    const c = new SSHChannel(options({ known_hosts: empty }));
    await assert.rejects(c.run('true'), (e: FuncxError) => e.code === 'SSH_HOST_KEY' && /not in .*known_hosts_empty/.test(e.message));
    await c.close();
    const missing = new SSHChannel(options({ known_hosts: join(work, 'nope') }));
    await assert.rejects(missing.run('true'), (e: FuncxError) => e.code === 'SSH_HOST_KEY' && /nope does not exist/.test(e.message));
    await missing.close();
  });

  test('a hashed known_hosts entry (|1|salt|hash) is accepted', async () => {
    const [, type, key] = readFileSync(sshd.knownHostsPath, 'utf8').trim().split(/\s+/);
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update(knownHostName('127.0.0.1', 2222)).digest('base64');
    const file = join(work, 'known_hosts_hashed');
    writeFileSync(file, `# hashed\n|1|${salt.toString('base64')}|${hash} ${type} ${key}\n`);
    const c = new SSHChannel(options({ known_hosts: file }));
    try {
      assert.equal((await c.run('echo ok')).stdout, 'ok\n');
    } finally {
      await c.close();
    }
  });

  test('after close(), commands are refused', async () => {
    const c = new SSHChannel(options());
    await c.run('true');
    await c.close();
    await c.close(); // twice is fine
    await assert.rejects(c.run('true'), IllegalStateError);
  });
});
