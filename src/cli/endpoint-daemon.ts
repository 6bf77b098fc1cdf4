#!/usr/bin/env node
/**
 * The detached endpoint daemon, started by `funcx-endpoint start`. It reports Active (or why not) to its
 * parent over the IPC channel, then runs on its own. Arguments: NAME; FUNCX_HOME and the service URL and
 * token come through the environment (never argv, which `ps` shows).
 */
import { runDaemon } from '../endpoint/daemon/daemon.js';
import { FuncxHome } from '../endpoint/daemon/home.js';

const name = process.argv[2] ?? 'default';
const report = (message: object): void => {
  if (process.send) process.send(message);
};
const serviceUrl = process.env.FUNCX_DAEMON_SERVICE_URL ?? '';
const token = process.env.FUNCX_DAEMON_TOKEN ?? '';
delete process.env.FUNCX_DAEMON_TOKEN; // not inherited by blocks
delete process.env.FUNCX_TOKEN;
runDaemon({
  home: new FuncxHome(),
  name,
  serviceUrl,
  token,
  endpointAddress: process.env.FUNCX_DAEMON_ENDPOINT_ADDRESS || undefined,
  report,
  echo: process.env.FUNCX_DAEMON_FOREGROUND === '1',
})
  .then(() => {
    if (process.connected) process.disconnect();
  })
  .catch(() => {
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 100);
  });
