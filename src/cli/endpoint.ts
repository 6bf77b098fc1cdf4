#!/usr/bin/env node
/**
 * `funcx-endpoint`: the endpoint CLI of the seed (init, configure, start, stop, restart, list, status,
 * delete) plus render and doctor. Each command lives in src/cli/commands/<name>.ts and registers itself on
 * the program; every failure goes to the one handler in handle.ts, the only place that exits.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { createContext, type CliContext } from './context.js';
import { handle } from './handle.js';
import { registerInitCommand } from './commands/init.js';
import { registerConfigureCommand } from './commands/configure.js';
import { registerStartCommand } from './commands/start.js';
import { registerStopCommand } from './commands/stop.js';
import { registerRestartCommand } from './commands/restart.js';
import { registerStatusCommand } from './commands/status.js';
import { registerListCommand } from './commands/list.js';
import { registerDeleteCommand } from './commands/delete.js';
import { registerRenderCommand } from './commands/render.js';
import { registerDoctorCommand } from './commands/doctor.js';

/** The package's version, from package.json (two or three levels up, from dist/ or from sources). */
function packageVersion(): string {
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'funcx-endpoint' && pkg.version) return pkg.version;
    } catch {
      // try the next level
    }
  }
  return 'unknown';
}

function buildProgram(ctx: CliContext): Command {
  const program = new Command('funcx-endpoint')
    .description('Run funcX endpoints: each registers with the funcX service and runs functions on workers it starts here or through a batch scheduler (Slurm, PBS Pro, Torque, Cobalt, LSF, Grid Engine).')
    .version(packageVersion(), '-v, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showSuggestionAfterError(true)
    .exitOverride()
    .addHelpText(
      'after',
      `
The funcX home is $FUNCX_HOME (now ${ctx.home.root}); each endpoint is a folder in it with a config.ts.
First time: funcx-endpoint init, then funcx-endpoint start. More endpoints: funcx-endpoint configure NAME.
Run funcx-endpoint help COMMAND for a command's options.`,
    );
  registerInitCommand(program, ctx);
  registerConfigureCommand(program, ctx);
  registerStartCommand(program, ctx);
  registerStopCommand(program, ctx);
  registerRestartCommand(program, ctx);
  registerListCommand(program, ctx);
  registerStatusCommand(program, ctx);
  registerDeleteCommand(program, ctx);
  registerRenderCommand(program, ctx);
  registerDoctorCommand(program, ctx);
  // Subcommands throw too (instead of exiting), so every exit goes through handle().
  for (const command of program.commands) command.exitOverride();
  return program;
}

async function main(argv: string[]): Promise<void> {
  const ctx = createContext();
  await buildProgram(ctx).parseAsync(argv);
}

main(process.argv).catch((err: unknown) => handle(err));
