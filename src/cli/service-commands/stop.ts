/** `funcx-service stop`: SIGTERM, then SIGKILL once the grace is up; the pid file is removed. */
import type { Command } from 'commander';
import { rmSync } from 'node:fs';
import { intOption } from './options.js';
import { isServiceProcess, readPidFile } from './pid-file.js';
import { pidPath } from './state.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function stopService(graceSeconds: number): Promise<void> {
  const running = readPidFile();
  if (!running || !isServiceProcess(running.pid)) {
    if (running) rmSync(pidPath(), { force: true });
    process.stdout.write(`funcx-service is not running${running ? ' (removed a stale pid file)' : ''}\n`);
    return;
  }
  process.kill(running.pid, 'SIGTERM');
  const deadline = Date.now() + graceSeconds * 1000;
  while (isServiceProcess(running.pid) && Date.now() < deadline) await sleep(50);
  let how = 'stopped';
  if (isServiceProcess(running.pid)) {
    process.kill(running.pid, 'SIGKILL');
    how = `killed (it did not stop within ${graceSeconds} s)`;
    while (isServiceProcess(running.pid)) await sleep(20);
  }
  if (readPidFile()?.pid === running.pid) rmSync(pidPath(), { force: true });
  process.stdout.write(`funcx-service ${how} (pid ${running.pid})\n`);
}

export function registerStopCommand(program: Command): void {
  program
    .command('stop')
    .description('stop the service: SIGTERM, then SIGKILL after the grace period')
    .option('--grace <seconds>', 'seconds to wait before SIGKILL', intOption('--grace', 0, 3600), 10)
    .action(async (flags: { grace: number }) => stopService(flags.grace));
}
