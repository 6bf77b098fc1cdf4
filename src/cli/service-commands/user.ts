/**
 * `funcx-service user add/disable/enable/remove NAME`, and `user quota NAME` (service-tenancy.ts). They work on
 * the service's database directly; a running service sees the change at its next request.
 */
import type { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { FuncxError } from '../../errors.js';
import { openStore } from '../../service/store/index.js';
import { addQuotaCommand } from '../service-tenancy.js';
import { database, serviceHome, withUser } from './state.js';

async function addUser(name: string, flags: { database?: string }): Promise<void> {
  if (!/^[A-Za-z0-9._@-]{1,100}$/.test(name)) throw new FuncxError('CONFIG', `user name "${name}" may only use letters, digits, ".", "_", "@" and "-"`);
  mkdirSync(serviceHome(), { recursive: true, mode: 0o700 });
  const store = await openStore(database(flags.database));
  try {
    if (await store.userByName(name)) throw new FuncxError('USER_EXISTS', `user ${name} already exists`);
    const { token } = await store.createUser(name);
    process.stderr.write(`Created user ${name}. Their token is printed once below; only its hash is kept:\n`);
    process.stdout.write(token + '\n');
  } finally {
    await store.close();
  }
}

/** The `user` group; `quota` comes last, as in `funcx-service user --help`. */
export function registerUserCommands(program: Command): void {
  const user = program.command('user').description('manage users');
  user
    .command('add <name>')
    .description('create a user and print their token (once)')
    .option('--database <location>', 'as for start')
    .action(async (name: string, flags: { database?: string }) => addUser(name, flags));
  user
    .command('disable <name>')
    .description("refuse the user's token until enabled again (nothing of theirs is deleted)")
    .option('--database <location>', 'as for start')
    .action(async (name: string, flags: { database?: string }) =>
      withUser(name, flags, async (store, u) => {
        await store.setUserDisabled(u.id, true);
        process.stdout.write(`User ${name} is disabled: their token is refused.\n`);
      }));
  user
    .command('enable <name>')
    .description('accept the user\'s token again')
    .option('--database <location>', 'as for start')
    .action(async (name: string, flags: { database?: string }) =>
      withUser(name, flags, async (store, u) => {
        await store.setUserDisabled(u.id, false);
        process.stdout.write(`User ${name} is enabled.\n`);
      }));
  user
    .command('remove <name>')
    .description('remove the user with their endpoints, functions, groups and tasks')
    .option('--database <location>', 'as for start')
    .action(async (name: string, flags: { database?: string }) =>
      withUser(name, flags, async (store, u) => {
        const { endpoints, failedTasks } = await store.removeUser(u.id);
        process.stdout.write(`Removed user ${name} (${endpoints.length} endpoints, ${failedTasks.length} unfinished tasks on them failed).\n`);
      }));
  addQuotaCommand(user, withUser);
}
