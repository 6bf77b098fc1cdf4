/** `funcx-endpoint restart [NAME]`: stop (if running), then start. */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { DEFAULT_ENDPOINT } from '../../endpoint/daemon/home.js';
import { stopEndpoint } from './stop.js';
import { startEndpoint } from './start.js';

export function registerRestartCommand(program: Command, ctx: CliContext): void {
  program
    .command('restart [name]')
    .description('stop the endpoint if it runs, then start it')
    .action(async (name: string | undefined) => {
      const n = name ?? DEFAULT_ENDPOINT;
      await stopEndpoint(ctx, n, 15);
      await startEndpoint(ctx, n, {});
    });
}
