/**
 * `funcx-endpoint render [NAME]`: print the exact script a block of the profile would submit (a dry run:
 * nothing is submitted, no keys are made). The manager command in it comes from the engine's pure builder
 * (manager-command.ts), with no engine built: its interchange port reads 0 and its key file is chosen at start.
 */
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { DEFAULT_ENDPOINT, FuncxHome } from '../../endpoint/daemon/home.js';
import type { Config } from '../../config/config.js';
import { loadProfile } from '../../config/load.js';
import { blockRequest, firstBlockShape } from '../../endpoint/engine/manager-command.js';
import { managerAddress } from '../../config/engine-options.js';
import { loadGlobalOptions } from '../../config/global-options.js';
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
 * home connects first, since the script names absolute paths.
 */
export async function renderBlockScript(config: Config, name: string, endpointAddress?: string): Promise<string> {
  const channel = config.provider.channel as typeof config.provider.channel & { connect?: () => Promise<void> };
  if (channel.isRemote && !channel.scriptDir.startsWith('/') && typeof channel.connect === 'function') await channel.connect();
  // Before start the interchange has no port (0) and the key file no place yet ('').
  const at = { addresses: [managerAddress(config.engine, endpointAddress), ...config.engine.extraAddresses], port: 0, keyFile: '' };
  return config.provider.render(blockRequest(config.engine, at, name, '0', firstBlockShape(config.strategy)));
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
