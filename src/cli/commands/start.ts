/**
 * `funcx-endpoint start [NAME]`: register with the service, detach the daemon, and return once the endpoint
 * is Active (or print why it is not). With no `init` yet, `init` runs first; with no profile for `default`,
 * it is created.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ensureInitialized } from './init.js';
import { startDaemon } from '../../endpoint/daemon/control.js';
import { EndpointDaemon } from '../../endpoint/daemon/daemon.js';
import { loadGlobalOptions } from '../../config/global-options.js';
import { DEFAULT_ENDPOINT } from '../../endpoint/daemon/home.js';
import { FuncxError } from '../../errors.js';
import { createDefaultProfile } from './configure.js';
import { forwarderPinPath, resetForwarderPin } from '../../endpoint/service-link/forwarder-pin.js';

/** Service URL and token: environment first, then the home's credentials, then the global options. */
export async function serviceAccess(ctx: CliContext): Promise<{ serviceUrl: string; token: string; endpointAddress?: string }> {
  const credentials = ctx.home.readCredentials();
  const global = await loadGlobalOptions(ctx.home, ctx.err);
  const serviceUrl = process.env.FUNCX_SERVICE_URL || credentials?.serviceUrl || global.service_url;
  const token = process.env.FUNCX_TOKEN || credentials?.token;
  if (!token) throw new FuncxError('UNAUTHORIZED', 'no token: set FUNCX_TOKEN or run `funcx-endpoint init`');
  return { serviceUrl, token, endpointAddress: global.endpoint_address };
}

export async function startEndpoint(ctx: CliContext, name: string, options: { foreground?: boolean; resetForwarderKey?: boolean }): Promise<void> {
  await ensureInitialized(ctx);
  if (!ctx.home.isConfigured(name)) {
    if (name !== DEFAULT_ENDPOINT) {
      throw new FuncxError('NOT_CONFIGURED', `endpoint ${name} is not configured`, [`funcx-endpoint configure ${name}`]);
    }
    createDefaultProfile(ctx, name);
  }
  const access = await serviceAccess(ctx);
  if (options.resetForwarderKey && resetForwarderPin(forwarderPinPath(ctx.home.keysDir(name)))) {
    ctx.out(`Forgot the forwarder key endpoint ${name} had pinned: it pins the one the service offers now`);
  }
  if (options.foreground) {
    process.env.FUNCX_HOME = ctx.home.root;
    delete process.env.FUNCX_TOKEN; // blocks started by this process inherit its environment
    const daemon = new EndpointDaemon({ home: ctx.home, name, ...access, echo: true });
    await daemon.start();
    ctx.out(`Endpoint ${name} is Active (running in the foreground; Ctrl-C stops it)`);
    const end = await daemon.finished;
    process.exit(end === 'stopped' ? 0 : 1);
  }
  const t0 = Date.now();
  const { id, pid } = await startDaemon(ctx.home, name, access);
  ctx.out(`Endpoint ${name} is Active: id ${id}, pid ${pid} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  ctx.out(`Logs: ${ctx.home.logFile(name)}`);
}

export function registerStartCommand(program: Command, ctx: CliContext): void {
  program
    .command('start [name]')
    .description('start an endpoint (registers it, detaches a daemon, returns once it is Active)')
    .option('--foreground', 'run the daemon in this process (for debugging or a service manager)')
    .option('--reset-forwarder-key', "trust the service's new forwarder key (after its operator replaced it); refused otherwise")
    .action(async (name: string | undefined, options: { foreground?: boolean; resetForwarderKey?: boolean }) => {
      await startEndpoint(ctx, name ?? DEFAULT_ENDPOINT, options);
    });
}
