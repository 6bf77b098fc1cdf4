/** `funcx-service status [--json]`: whether the service runs and answers /v1/health, and where (exit status 3 when not). */
import type { Command } from 'commander';
import { healthy, isServiceProcess, readPidFile } from './pid-file.js';
import { serviceHome } from './state.js';

async function status(json: boolean): Promise<void> {
  const running = readPidFile();
  const alive = running ? isServiceProcess(running.pid) : false;
  const health = running && alive ? await healthy(running.url) : undefined;
  if (json) {
    process.stdout.write(JSON.stringify({ running: Boolean(health), url: running?.url ?? null, pid: alive ? running!.pid : null, home: serviceHome() }) + '\n');
  } else if (health) {
    process.stdout.write(`funcx-service is running at ${running!.url} (pid ${running!.pid}, protocol ${health.protocol})\n`);
  } else if (alive) {
    process.stdout.write(`funcx-service (pid ${running!.pid}) is running but ${running!.url}/v1/health does not answer\n`);
  } else {
    process.stdout.write('funcx-service is not running\n');
  }
  if (!health) process.exitCode = 3;
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('say whether the service runs, and where (exit 3 when not)')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }) => status(Boolean(flags.json)));
}
