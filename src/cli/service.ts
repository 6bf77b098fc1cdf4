#!/usr/bin/env node
/**
 * `funcx-service`: start (detached by default), stop (one call), status, users (add, disable, enable, remove,
 * quota), tokens (rotate; named ones: create, list, revoke: service-tenancy.ts), and `migrate`.
 * State lives in FUNCX_SERVICE_HOME (default ~/.funcx-service): service.db, keys/, service.pid, service.log;
 * with `--database postgres://…` (or FUNCX_DATABASE_URL) the tasks, users and endpoints live in PostgreSQL
 * instead, shared by every replica. Each command group lives in src/cli/service-commands/; every failure goes
 * to the one handler in handle.ts.
 */
import { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { handle } from './handle.js';
import { registerStartCommand } from './service-commands/start.js';
import { registerStopCommand } from './service-commands/stop.js';
import { registerStatusCommand } from './service-commands/status.js';
import { registerUserCommands } from './service-commands/user.js';
import { registerTokenCommands } from './service-commands/token.js';
import { registerMigrateCommand } from './service-commands/migrate.js';

const program = new Command('funcx-service').description('The funcX web service: REST API, users, endpoints, functions, tasks and forwarders.');
// A detached start runs this script again, in the foreground.
registerStartCommand(program, fileURLToPath(import.meta.url));
registerStopCommand(program);
registerStatusCommand(program);
registerUserCommands(program);
registerTokenCommands(program);
registerMigrateCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => handle(err));
