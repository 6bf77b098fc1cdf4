/** `funcx-endpoint stop [NAME]`: one call stops it (drain, cancel blocks, then SIGKILL after the grace). */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { stopDaemon } from '../../endpoint/daemon/control.js';
import { DEFAULT_ENDPOINT } from '../../endpoint/daemon/home.js';
import { FuncxError } from '../../errors.js';

export async function stopEndpoint(ctx: CliContext, name: string, graceS: number): Promise<void> {
  if (!ctx.home.isConfigured(name)) throw new FuncxError('NOT_CONFIGURED', `endpoint ${name} is not configured`);
  const result = await stopDaemon(ctx.home, name, { graceMs: graceS * 1000 });
  if (!result.wasRunning) ctx.out(`Endpoint ${name} is not running`);
  else if (result.killed) ctx.out(`Endpoint ${name} stopped (pid ${result.pid} did not finish within ${graceS} s and was killed)`);
  else ctx.out(`Endpoint ${name} stopped`);
}

export function registerStopCommand(program: Command, ctx: CliContext): void {
  program
    .command('stop [name]')
    .description('stop an endpoint: drain, cancel its blocks, and make sure the daemon is gone')
    .option('--grace <seconds>', 'seconds to drain before the daemon is killed', '15')
    .action(async (name: string | undefined, options: { grace: string }) => {
      const grace = Number(options.grace);
      if (!Number.isFinite(grace) || grace < 0) throw new FuncxError('USAGE', `--grace: expected seconds ≥ 0, got ${JSON.stringify(options.grace)}`);
      await stopEndpoint(ctx, name ?? DEFAULT_ENDPOINT, grace);
    });
}
