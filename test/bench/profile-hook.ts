/**
 * Preload for CPU profiles of processes started by the CLIs (NODE_OPTIONS refuses --cpu-prof):
 *   NODE_OPTIONS="--import file:///…/dist/test/bench/profile-hook.js" FUNCX_PROFILE_DIR=/tmp/prof …
 * Each process writes DIR/<script>-<pid>.cpuprofile when it exits (process.exit or the event loop ending).
 */
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';

const dir = process.env.FUNCX_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.start');
  process.on('exit', () => {
    session.post('Profiler.stop', (err, res) => {
      if (!err) writeFileSync(`${dir}/${basename(process.argv[1] ?? 'node', '.js')}-${process.pid}.cpuprofile`, JSON.stringify(res.profile));
    });
  });
}
