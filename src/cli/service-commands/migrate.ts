/** `funcx-service migrate`: bring the database's schema up to date and say its version (start does this too). */
import type { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { isPostgresUrl, openStore, PgStore } from '../../service/store/index.js';
import { database, describe, serviceHome } from './state.js';

/** Bring the database's schema up to date and say what it is at (start does this too). */
async function migrate(flags: { database?: string }): Promise<void> {
  const location = database(flags.database);
  if (!isPostgresUrl(location)) mkdirSync(serviceHome(), { recursive: true, mode: 0o700 });
  const store = await openStore(location);
  try {
    const version = await store.schemaVersion();
    const kind = store instanceof PgStore ? 'PostgreSQL' : 'SQLite';
    process.stdout.write(`${kind} database ${describe(location)} is at schema version ${version}\n`);
  } finally {
    await store.close();
  }
}

export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('bring the database schema up to date and exit (start does this too)')
    .option('--database <location>', 'as for start')
    .action(async (flags: { database?: string }) => migrate(flags));
}
