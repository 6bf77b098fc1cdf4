/**
 * `funcx-endpoint render [NAME]`: print the exact script a block of the profile would submit (a dry run:
 * nothing is submitted, no keys are kept). The manager command in it is the engine's own, built by an
 * Engine that is never started, so its interchange port reads 0 and its key file is chosen at start.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { DEFAULT_ENDPOINT, FuncxHome } from '../../endpoint/daemon/home.js';
import type { Config } from '../../config/config.js';
import { loadProfile } from '../../config/load.js';
import { Engine } from '../../endpoint/engine/engine.js';
import { loadGlobalOptions } from '../../config/global-options.js';
import { silentLogger } from '../../logger.js';
import type { CliContext } from '../context.js';

/** Load endpoint `name`'s profile; ConfigError naming the known endpoints when it is not configured. */
export async function loadEndpointProfile(home: FuncxHome, name: string): Promise<Config> {
  FuncxHome.checkName(name);
  if (!home.isConfigured(name)) {
    const known = home.endpointNames();
    throw new ConfigError(`no endpoint named ${name} in ${home.root}`, [
      known.length ? `endpoints: ${known.join(', ')}` : `create it with \`funcx-endpoint configure ${name}\``,
    ]);
  }
  return loadProfile(home.endpointDir(name));
}

/**
 * The script block "0" of `config` would submit. An SSH channel whose script_dir is relative to the remote
 * home connects first, since the script names absolute paths. Keys go to a temporary folder, removed after.
 */
export async function renderBlockScript(config: Config, name: string, endpointAddress?: string): Promise<string> {
  const channel = config.provider.channel as typeof config.provider.channel & { connect?: () => Promise<void> };
  if (channel.isRemote && !channel.scriptDir.startsWith('/') && typeof channel.connect === 'function') await channel.connect();
  const keysDir = mkdtempSync(join(tmpdir(), 'funcx-render-'));
  try {
    const engine = new Engine({ config, name, keysDir, endpointAddress, log: silentLogger });
    const request = engine.blockRequest('0', { nodes: config.provider.nodesPerBlock, walltimeS: config.provider.walltimeS });
    return await config.provider.render(request);
  } finally {
    rmSync(keysDir, { recursive: true, force: true });
  }
}

/** Close what loading a profile opened (an SSH connection), ignoring errors. */
export async function closeProfile(config: Config): Promise<void> {
  await config.provider.close().catch(() => {});
  await config.provider.channel.close().catch(() => {});
}

export function registerRenderCommand(program: Command, ctx: CliContext): void {
  program
    .command('render')
    .description('print the exact submit script a block of the endpoint would submit (dry run, nothing submitted)')
    .argument('[name]', 'endpoint name', DEFAULT_ENDPOINT)
    .action(async (name: string) => {
      const config = await loadEndpointProfile(ctx.home, name);
      try {
        const globals = await loadGlobalOptions(ctx.home);
        const script = await renderBlockScript(config, name, globals.endpoint_address);
        ctx.err(`# ${config.provider.label} block script of endpoint ${name} (dry run: the interchange address, port and key file are final only at start)`);
        ctx.out(script.replace(/\n$/, ''));
      } finally {
        await closeProfile(config);
      }
    });
}
