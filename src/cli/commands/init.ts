/**
 * `funcx-endpoint init [--service URL]`: authenticate with the funcX service and create the home: the
 * token (credentials.json, 0600), the global options ($FUNCX_HOME/config.ts) and the `default` profile.
 * The token comes from FUNCX_TOKEN or a hidden prompt, and is checked against the service (GET /v1/whoami)
 * before anything is written, so a wrong token or a service that is down fails here, loudly.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { FuncxError } from '../../errors.js';
import { DEFAULT_ENDPOINT } from '../../endpoint/daemon/home.js';
import { callService } from '../../endpoint/service-link/service-http.js';
import { checkGlobalOptions, defaultServiceUrl, loadGlobalOptions } from '../../config/global-options.js';
import type { CliContext } from '../context.js';
import { createProfile } from './configure.js';

/** How long the token check waits for the service. @default 10000 */
export const WHOAMI_TIMEOUT_MS = 10_000;

export interface InitOptions {
  /** The service URL. @default --service, else FUNCX_SERVICE_URL, else the home's config.ts, else http://127.0.0.1:8080 */
  serviceUrl?: string;
  /** Ask for the token at a prompt when FUNCX_TOKEN is not set (needs a terminal). @default true */
  interactive?: boolean;
}

/** Who the service says the token belongs to. */
export interface WhoAmI {
  userId: string;
  name: string;
}

/** GET {serviceUrl}/v1/whoami with the token: FuncxError SERVICE_UNREACHABLE, UNAUTHORIZED or SERVICE_ERROR. */
export async function whoami(serviceUrl: string, token: string, timeoutMs = WHOAMI_TIMEOUT_MS): Promise<WhoAmI> {
  const { url, status, ok, body, message } = await callService(serviceUrl, '/v1/whoami', { token, timeoutMs });
  if (status === 401) {
    const why = typeof body.message === 'string' ? `: ${body.message}` : '';
    throw new FuncxError('UNAUTHORIZED', `the funcX service at ${serviceUrl} refused the token${why}`, [
      'check FUNCX_TOKEN (a token is printed once by `funcx-service user add NAME`)',
    ]);
  }
  if (!ok || typeof body.userId !== 'string' || typeof body.name !== 'string') {
    throw new FuncxError('SERVICE_ERROR', `${url} answered ${status} without a user: ${message}`, [
      'is this URL a funcX service? Check --service or FUNCX_SERVICE_URL',
    ]);
  }
  return { userId: body.userId, name: body.name };
}

/** Read a line without echoing it (the token), prompting on stderr so stdout stays clean. */
async function promptHidden(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  // readline echoes through _writeToOutput; silence it once the question is out.
  const hook = rl as unknown as { _writeToOutput: (text: string) => void };
  let muted = false;
  hook._writeToOutput = (text: string) => {
    if (!muted) process.stderr.write(text);
  };
  try {
    const answer = new Promise<string>((res) => rl.question(question, res));
    muted = true;
    return await answer;
  } finally {
    process.stderr.write('\n');
    rl.close();
  }
}

async function obtainToken(interactive: boolean): Promise<string> {
  let token = process.env.FUNCX_TOKEN?.trim();
  if (!token) {
    if (!interactive || !process.stdin.isTTY) {
      throw new FuncxError('NO_TOKEN', 'no funcX token: FUNCX_TOKEN is not set and there is no terminal to ask for one', [
        'set FUNCX_TOKEN to a token from `funcx-service user add NAME`, or run `funcx-endpoint init` in a terminal',
      ]);
    }
    token = (await promptHidden('funcX token (input hidden): ')).trim();
  }
  if (!token || /\s/.test(token)) throw new FuncxError('NO_TOKEN', 'the token is empty or contains spaces');
  return token;
}

/** The text of $FUNCX_HOME/config.ts (the values are JSON literals, hence valid TypeScript). */
export function globalConfigSource(values: { service_url: string; username: string; email: string }): string {
  checkGlobalOptions(values, 'global options');
  const s = JSON.stringify;
  return `/**
 * funcX global options, written by \`funcx-endpoint init\`. They apply to every endpoint in this folder.
 * Edit freely: the file is TypeScript, checked field by field when an endpoint starts.
 */
import { addressByHostname } from 'funcx-endpoint';

export default {
  // The funcX web service endpoints register with (the token in credentials.json belongs to it).
  service_url: ${s(values.service_url)},
  // Who you are: the service's name for the token's owner, and an email (optional).
  username: ${s(values.username)},
  email: ${s(values.email)},
  // broker_address and broker_port (the seed's local broker) are accepted but have no effect here:
  // tasks reach this endpoint through the service's forwarder.
  // The address managers dial when a profile's engine sets no \`address\`. It must be reachable from where
  // the workers run: for batch jobs, an address of this login node that compute nodes can reach, e.g.
  // addressByInterface('ib0') or addressByRoute() (also exported by 'funcx-endpoint').
  endpoint_address: addressByHostname(),
};
`;
}

/** Run init: check the token, write credentials, global options (unless present) and the default profile. */
export async function runInit(ctx: CliContext, options: InitOptions = {}): Promise<void> {
  const { home } = ctx;
  const hadGlobal = existsSync(home.globalConfigFile);
  const current = hadGlobal ? await loadGlobalOptions(home) : undefined;
  const serviceUrl = (options.serviceUrl ?? (process.env.FUNCX_SERVICE_URL || current?.service_url) ?? defaultServiceUrl()).replace(/\/+$/, '');
  checkGlobalOptions({ service_url: serviceUrl }, '--service');
  const token = await obtainToken(options.interactive ?? true);
  const me = await whoami(serviceUrl, token);
  home.ensure();
  home.writeCredentials({ serviceUrl, token });
  ctx.err(`Authenticated with ${serviceUrl} as ${me.name}; token saved in ${home.credentialsFile} (0600)`);
  if (!hadGlobal) {
    const username = me.name || userInfo().username;
    writeFileSync(home.globalConfigFile, globalConfigSource({ service_url: serviceUrl, username, email: '' }), { mode: 0o644 });
    ctx.err(`Wrote the global options: ${home.globalConfigFile}`);
  } else if (current && current.service_url.replace(/\/+$/, '') !== serviceUrl) {
    ctx.err(`Note: ${home.globalConfigFile} names service_url ${current.service_url}, but the token is for ${serviceUrl}: edit it to match`);
  }
  if (!home.isConfigured(DEFAULT_ENDPOINT)) {
    const file = createProfile(home, DEFAULT_ENDPOINT);
    ctx.err(`Created the default endpoint profile: ${file}`);
  }
  ctx.out(`funcX is initialized in ${home.root}. Start an endpoint with \`funcx-endpoint start\`.`);
}

/**
 * Make sure the home is initialized (credentials present) before `start`: runs init without a prompt when
 * it is not, so FUNCX_TOKEN must be set then (unless `interactive` allows asking at a terminal).
 */
export async function ensureInitialized(ctx: CliContext, options: InitOptions = {}): Promise<void> {
  if (ctx.home.readCredentials()) return;
  try {
    await runInit(ctx, { interactive: false, ...options });
  } catch (err) {
    if ((err as FuncxError).code !== 'NO_TOKEN') throw err;
    throw new FuncxError('NOT_INITIALIZED', `${ctx.home.root} is not initialized (no credentials) and FUNCX_TOKEN is not set`, [
      'run `funcx-endpoint init` first, or set FUNCX_TOKEN',
    ]);
  }
}

export function registerInitCommand(program: Command, ctx: CliContext): void {
  program
    .command('init')
    .description('authenticate with the funcX service and create the funcX home with a default endpoint profile')
    .option('--service <url>', 'funcX service URL (default: FUNCX_SERVICE_URL, else http://127.0.0.1:8080)')
    .action(async (opts: { service?: string }) => {
      await runInit(ctx, { serviceUrl: opts.service, interactive: true });
    });
}
