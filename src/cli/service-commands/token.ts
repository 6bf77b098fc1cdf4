/** `funcx-service token rotate USER`, and the named tokens' create/list/revoke (service-tenancy.ts). */
import type { Command } from 'commander';
import { addTokenCommands } from '../service-tenancy.js';
import { withUser } from './state.js';

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description("manage users' tokens");
  token
    .command('rotate <user>')
    .description('give the user a new token (printed once); the old one stops working at once')
    .option('--database <location>', 'as for start')
    .action(async (name: string, flags: { database?: string }) =>
      withUser(name, flags, async (store, u) => {
        const fresh = await store.rotateToken(u.id);
        process.stderr.write(`New token of ${name}, printed once below; the old one no longer works:\n`);
        process.stdout.write(fresh + '\n');
      }));
  addTokenCommands(token, withUser);
}
