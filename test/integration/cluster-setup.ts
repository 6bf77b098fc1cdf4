/**
 * Real services for integration tests: each `ensureX()` runs the project's start script (test/cluster/*.sh)
 * once per process and throws a clear error naming what is missing when it fails. Never skips: a test that
 * needs Slurm, Grid Engine or sshd fails when they cannot be started.
 *
 *   await ensureSlurm();          // partition debug, nodes n1..n3 on loopback
 *   await ensureGridEngine();     // queue all.q@<host>, parallel environment smp
 *   const ssh = await ensureSshd(); // root@127.0.0.1:2222, ssh.keyPath, ssh.knownHostsPath
 *   const bin = fixtureBin('pbspro'); // stand-in qsub/qstat/qdel/mpiexec: put first on PATH
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (found from this file, whether run from dist/ or from source). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'test', 'cluster', 'start-slurm.sh'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cluster-setup: cannot find test/cluster/start-slurm.sh above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** Stand-in schedulers that cannot be installed here; each folder holds that scheduler's commands and launcher. */
export type StandInScheduler = 'pbspro' | 'torque' | 'cobalt' | 'lsf';

/** Folder of a scheduler's stand-in commands (put it first on PATH). */
export function fixtureBin(scheduler: StandInScheduler): string {
  return join(repoRoot(), 'test', 'fixtures', scheduler, 'bin');
}

/** What the test sshd offers. */
export interface SshdInfo {
  host: '127.0.0.1';
  port: 2222;
  username: 'root';
  /** Client private key; also exported as FUNCX_TEST_SSH_KEY. */
  keyPath: string;
  /** known_hosts with the server's key; also exported as FUNCX_TEST_SSH_KNOWN_HOSTS. */
  knownHostsPath: string;
}

const started = new Map<string, Promise<string>>();
/** apt-get on a fresh CI machine can take minutes; a started cluster answers in seconds. */
const SCRIPT_TIMEOUT_MS = 600_000;

function runScript(name: string, what: string): Promise<string> {
  let p = started.get(name);
  if (!p) {
    p = new Promise((resolve, reject) => {
      const script = join(repoRoot(), 'test', 'cluster', name);
      if (process.getuid?.() !== 0) {
        reject(new Error(`${what} is needed by this test, but ${script} must run as root (uid is ${process.getuid?.()}); run the tests as root, as CI does`));
        return;
      }
      execFile('bash', [script], { timeout: SCRIPT_TIMEOUT_MS, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        if (err) {
          const tail = `${stdout}\n${stderr}`.trim().split('\n').slice(-15).join('\n');
          reject(new Error(`${what} is needed by this test and could not be started: ${script} failed (${err.message.split('\n')[0]}):\n${tail}`));
        } else resolve(stdout);
      });
    });
    started.set(name, p);
  }
  return p;
}

/** Start (or find running) the 3-node Slurm test cluster. */
export async function ensureSlurm(): Promise<void> {
  await runScript('start-slurm.sh', 'Slurm (slurmctld + slurmd n1..n3 + munge)');
}

/** Start (or find running) the one-host Grid Engine. */
export async function ensureGridEngine(): Promise<void> {
  await runScript('start-gridengine.sh', 'Grid Engine (sge_qmaster + sge_execd)');
  process.env.SGE_ROOT ??= '/var/lib/gridengine';
  process.env.SGE_CELL ??= 'default';
}

/** Start (or find running) sshd on 127.0.0.1:2222 and export FUNCX_TEST_SSH_KEY / FUNCX_TEST_SSH_KNOWN_HOSTS. */
export async function ensureSshd(): Promise<SshdInfo> {
  const out = await runScript('start-sshd.sh', 'sshd on 127.0.0.1:2222');
  const value = (name: string): string => {
    const m = new RegExp(`^${name}=(.+)$`, 'm').exec(out);
    if (!m) throw new Error(`start-sshd.sh did not print ${name}=...; output was:\n${out}`);
    return m[1];
  };
  const keyPath = value('FUNCX_TEST_SSH_KEY');
  const knownHostsPath = value('FUNCX_TEST_SSH_KNOWN_HOSTS');
  process.env.FUNCX_TEST_SSH_KEY = keyPath;
  process.env.FUNCX_TEST_SSH_KNOWN_HOSTS = knownHostsPath;
  return { host: '127.0.0.1', port: 2222, username: 'root', keyPath, knownHostsPath };
}

/** Start (or find running) the test PostgreSQL on 127.0.0.1:55432; returns (and exports) FUNCX_TEST_DATABASE_URL. */
export async function ensurePostgres(): Promise<string> {
  const out = await runScript('start-postgres.sh', 'PostgreSQL on 127.0.0.1:55432');
  const m = /^FUNCX_TEST_DATABASE_URL=(.+)$/m.exec(out);
  if (!m) throw new Error(`start-postgres.sh did not print FUNCX_TEST_DATABASE_URL=...; output was:\n${out}`);
  process.env.FUNCX_TEST_DATABASE_URL = m[1];
  return m[1];
}

/** Install Open MPI (when missing) and compile the MPI test program into MPI_HELLO. */
export async function ensureMpi(): Promise<void> {
  await runScript('start-mpi.sh', 'Open MPI (openmpi-bin, libopenmpi-dev) and the compiled test program');
}

/** The MPI test program start-mpi.sh compiles: `MPI_HELLO SECONDS [RANK_THAT_DIES]`. */
export const MPI_HELLO = '/opt/funcx-test/mpi-hello';
