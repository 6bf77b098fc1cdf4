/**
 * `funcx-endpoint delete NAME [--yes]`: unregister the endpoint at the service, then remove its folder
 * (profile, keys, logs, endpoint.json). Refuses while its daemon holds a live lease, on this host or another
 * one sharing the home. When the service cannot be reached the folder is kept unless --local-only is given.
 */
import { existsSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { ConfigError, FuncxError, IllegalStateError } from '../../errors.js';
import { FuncxHome } from '../../endpoint/daemon/home.js';
import { describeLease, leaseIsLive, readLease } from '../../endpoint/daemon/lease.js';
import type { CliContext } from '../context.js';
import { unregisterEndpoint } from '../../endpoint/service-link/registration.js';
import { serviceAccess } from './start.js';

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export function registerDeleteCommand(program: Command, ctx: CliContext): void {
  program
    .command('delete')
    .description("delete an endpoint's folder (profile, keys, logs); it must be stopped")
    .argument('<name>', 'endpoint name')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--local-only', 'delete the folder even when the service cannot be told (the endpoint stays registered there)')
    .action(async (name: string, opts: { yes?: boolean; localOnly?: boolean }) => {
      const { home } = ctx;
      FuncxHome.checkName(name);
      const dir = home.endpointDir(name);
      if (!existsSync(dir)) {
        const known = home.endpointNames();
        throw new ConfigError(`no endpoint named ${name} in ${home.root}`, known.length ? [`endpoints: ${known.join(', ')}`] : []);
      }
      const lease = readLease(home.pidFile(name));
      if (lease && leaseIsLive(lease, Date.now())) {
        throw new IllegalStateError(`endpoint ${name} is running (${describeLease(lease)}); stop it first with \`funcx-endpoint stop ${name}\``);
      }
      if (!opts.yes) {
        if (!process.stdin.isTTY) {
          throw new FuncxError('CONFIRMATION_REQUIRED', `not deleting ${dir} without confirmation: no terminal to ask`, [
            `run \`funcx-endpoint delete ${name} --yes\``,
          ]);
        }
        if (!(await confirm(`Delete endpoint ${name} and everything in ${dir}? [y/N] `))) {
          ctx.err('Not deleted.');
          return;
        }
      }
      let id: string | undefined;
      try {
        id = home.readEndpointInfo(name)?.id;
      } catch {
        // A broken endpoint.json is no reason to keep the folder.
      }
      let registered = '';
      if (id) {
        try {
          const access = await serviceAccess(ctx);
          const outcome = await unregisterEndpoint(access.serviceUrl, access.token, id);
          registered = outcome === 'deleted' ? `; unregistered ${id} at ${access.serviceUrl}` : `; the service did not know ${id}`;
        } catch (err) {
          if (!opts.localOnly) {
            throw new FuncxError('UNREGISTER_FAILED', `endpoint ${name} (${id}) was not deleted: the service could not be told: ${(err as Error).message}`, [
              `run \`funcx-endpoint delete ${name} --local-only\` to delete the folder anyway (the endpoint stays registered at the service)`,
            ]);
          }
          ctx.err(`Warning: the service could not be told (${(err as Error).message}); endpoint ${id} stays registered there.`);
        }
      }
      rmSync(dir, { recursive: true, force: true });
      ctx.out(`Deleted endpoint ${name} (${dir})${registered}.`);
    });
}
