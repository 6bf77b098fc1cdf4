#!/usr/bin/env node
/**
 * The detached endpoint daemon, started by `funcx-endpoint start`. Arguments: NAME; FUNCX_HOME and the
 * service URL come through the environment, the token as the first message on the IPC channel (never argv,
 * which `ps` shows, nor the environment, which /proc/PID/environ shows). It reports Active (or why not) to
 * its parent over the IPC channel, then runs on its own until stopped, and exits 0 (stopped) or 1 (failed).
 */
import { EndpointDaemon, type DaemonReport } from '../endpoint/daemon/daemon.js';
import type { DaemonSecrets } from '../endpoint/daemon/control.js';
import { FuncxHome } from '../endpoint/daemon/home.js';

const name = process.argv[2] ?? 'default';
/** The last report, sent: the process exits only once it is on its way to the parent. */
let reported: Promise<void> = Promise.resolve();
const report = (message: DaemonReport): void => {
  if (!process.connected) return;
  reported = new Promise((resolve) => process.send!(message, undefined, {}, () => resolve()));
};
delete process.env.FUNCX_TOKEN; // not inherited by blocks

/** The token from the parent, first thing on the IPC channel. */
function readSecrets(): Promise<DaemonSecrets> {
  return new Promise((resolve, reject) => {
    if (!process.connected) return reject(new Error('no IPC channel: start the daemon with `funcx-endpoint start`'));
    process.once('message', (m: DaemonSecrets) => resolve(m));
    process.once('disconnect', () => reject(new Error('the parent left before sending the token')));
  });
}

// Signals are the daemon's to handle from its first moment (it installs its own handlers before the lease).
let signalled = false;
const ignore = (): void => {
  signalled = true;
};
process.on('SIGTERM', ignore).on('SIGINT', ignore);

try {
  const secrets = await readSecrets();
  const daemon = new EndpointDaemon({
    home: new FuncxHome(),
    name,
    serviceUrl: process.env.FUNCX_DAEMON_SERVICE_URL ?? '',
    token: secrets.token,
    endpointAddress: process.env.FUNCX_DAEMON_ENDPOINT_ADDRESS || undefined,
    report,
    echo: process.env.FUNCX_DAEMON_FOREGROUND === '1',
  });
  if (signalled) process.exit(0); // stopped before it began: nothing to undo
  const started = daemon.start(); // installs the daemon's signal handlers before its first await
  process.off('SIGTERM', ignore).off('SIGINT', ignore);
  started.then(
    () => {
      if (process.connected) process.disconnect();
    },
    () => {},
  );
  const end = await daemon.finished;
  await started.catch(() => {}); // the failure, if any, is reported after the clean-up
  await reported;
  process.exit(end === 'stopped' ? 0 : 1);
} catch (err) {
  process.stderr.write(`endpoint daemon: ${(err as Error).message}\n`);
  process.exit(1);
}
