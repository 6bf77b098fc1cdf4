/**
 * TLS: `tls: {cert, key}` (funcx-service start --tls-cert/--tls-key) serves HTTPS, which the SDK verifies
 * (a custom CA by file); plain http:// to a host that is not loopback is refused unless the client is told.
 * The certificate is made here by openssl, self-signed for 127.0.0.1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { FuncXClient } from '../../src/sdk/client.js';
import { FuncxError } from '../../src/errors.js';
import { inProcessService, tmpDir } from './harness.js';

function selfSigned(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  return { cert, key };
}

test('the service serves HTTPS with the given certificate; the SDK verifies it', async (t) => {
  const tls = selfSigned(tmpDir('tls'));
  const s = await inProcessService(t, { tls });
  assert.match(s.url, /^https:\/\//);
  const { token } = await s.store.createUser('alice');
  assert.equal((await new FuncXClient({ serviceUrl: s.url, token, caFile: tls.cert }).whoami()).name, 'alice');
  // Without the CA the certificate is not trusted, and nothing is sent in clear.
  await assert.rejects(new FuncXClient({ serviceUrl: s.url, token }).whoami(), /certificate/);
  await assert.rejects(fetch(s.url.replace('https:', 'http:') + '/v1/health'));
});

test('http:// to a host that is not loopback is refused unless the client says --insecure', () => {
  for (const url of ['http://funcx.example.org:8080', 'http://10.1.2.3:8080', 'http://[2001:db8::1]:8080']) {
    assert.throws(() => new FuncXClient({ serviceUrl: url, token: 'fx_x' }), (err: unknown) => {
      assert.ok(err instanceof FuncxError, String(err));
      assert.equal(err.code, 'INSECURE_URL');
      assert.match(err.message, /https/);
      return true;
    });
    assert.doesNotThrow(() => new FuncXClient({ serviceUrl: url, token: 'fx_x', insecure: true }));
  }
  for (const url of ['http://127.0.0.1:8080', 'http://localhost:8080', 'http://[::1]:8080', 'https://funcx.example.org']) {
    assert.doesNotThrow(() => new FuncXClient({ serviceUrl: url, token: 'fx_x' }), url);
  }
});
