/**
 * The SDK client's options, and where its service URL and token come from (the options, the environment or
 * $FUNCX_HOME/credentials.json); plain http:// is refused off loopback, where the token would travel in clear.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { FuncxError } from '../errors.js';

/** @default FUNCX_SERVICE_URL, else credentials.json's serviceUrl, else http://127.0.0.1:8080 */
export interface FuncXClientOptions {
  serviceUrl?: string;
  /** @default FUNCX_TOKEN, else credentials.json's token */
  token?: string;
  /** Per request (long-polls get their wait on top). @default 30000 */
  timeoutMs?: number;
  /** A PEM file of the CA that signed the service's certificate (NODE_EXTRA_CA_CERTS works too). */
  caFile?: string;
  /** Allow plain http:// to a host that is not loopback (tokens then cross the network in clear). @default FUNCX_INSECURE=1 */
  insecure?: boolean;
}

/** Loopback hosts, where plain HTTP never leaves the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** Refuse http:// to a host that is not loopback unless `insecure`: the token would travel in clear. */
export function checkServiceUrl(serviceUrl: string, insecure = process.env.FUNCX_INSECURE === '1'): void {
  let url: URL;
  try {
    url = new URL(serviceUrl);
  } catch {
    throw new FuncxError('CONFIG', `the service URL ${JSON.stringify(serviceUrl)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new FuncxError('CONFIG', `the service URL ${JSON.stringify(serviceUrl)} is neither http:// nor https://`);
  }
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname) && !insecure) {
    throw new FuncxError('INSECURE_URL', `refusing plain http:// to ${url.host}: the token would cross the network in clear; use https://`, [
      'serve the service with `funcx-service start --tls-cert FILE --tls-key FILE`',
      'or, on a network you trust, pass --insecure (FUNCX_INSECURE=1)',
    ]);
  }
}

/** Service URL and token from the options, the environment or $FUNCX_HOME/credentials.json. */
export function resolveCredentials(options: FuncXClientOptions = {}): { serviceUrl: string; token: string } {
  const home = process.env.FUNCX_HOME || join(homedir(), '.funcx');
  let saved: { serviceUrl?: unknown; token?: unknown } = {};
  const file = join(home, 'credentials.json');
  try {
    saved = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new FuncxError('CONFIG', `${file}: cannot read credentials: ${(err as Error).message}`);
  }
  const serviceUrl = options.serviceUrl ?? process.env.FUNCX_SERVICE_URL ?? (typeof saved.serviceUrl === 'string' ? saved.serviceUrl : 'http://127.0.0.1:8080');
  const token = options.token ?? process.env.FUNCX_TOKEN ?? (typeof saved.token === 'string' ? saved.token : undefined);
  if (!token) {
    throw new FuncxError('NO_TOKEN', `no funcX token: set FUNCX_TOKEN or run \`funcx-endpoint init\` (looked in ${file})`, [
      'get a token with `funcx-service user add NAME`',
    ]);
  }
  return { serviceUrl: serviceUrl.replace(/\/+$/, ''), token };
}
