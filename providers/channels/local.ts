/**
 * The local channel: scheduler commands run on this machine through /bin/sh, files are written here.
 * Used when the endpoint runs on the login node itself (the common case).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ConfigError } from '../../src/errors.js';
import type { Channel, CommandResult, RunOptions } from './channel.js';

/** Options of {@link LocalChannel}. */
export interface LocalChannelOptions {
  /**
   * Folder where submit scripts are written; a leading `~` means the home folder. The endpoint passes the
   * profile's own `submit_scripts` folder.
   * @default the loading profile's `submit_scripts` folder; else "$FUNCX_HOME/submit_scripts" or "~/.funcx/submit_scripts"
   */
  script_dir?: string;
}

/** Time between SIGTERM and SIGKILL when a command runs past its timeout. */
const KILL_GRACE_MS = 1000;
/**
 * After the shell exits, how long to wait for its output pipes to close. A command that leaves a background
 * process holding stdout open (`daemon &`) would otherwise keep `run` waiting for that process.
 */
const DRAIN_AFTER_EXIT_MS = 200;
/** Exit status reported when the shell cannot be started at all (e.g. the working folder is missing). */
const CANNOT_START = 127;

/** Expand a leading `~` and make the path absolute (relative to `base`). */
export function expandHome(path: string, base: string = process.cwd()): string {
  if (path === '~') return homedir();
  if (path.startsWith('~/')) return join(homedir(), path.slice(2));
  return isAbsolute(path) ? path : resolve(base, path);
}

/** Environment variable names we accept (a name with `=` or spaces would corrupt the environment). */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Run commands and move files on this machine. */
export class LocalChannel implements Channel {
  readonly kind = 'local';
  readonly isRemote = false;
  readonly scriptDir: string;
  /** Process groups of commands still running, killed by close(). */
  private readonly running = new Set<ChildProcess>();

  constructor(options: LocalChannelOptions = {}) {
    // A profile loaded by the endpoint keeps its scripts in its own folder (FUNCX_PROFILE_DIR is set while it loads).
    const fallback = process.env.FUNCX_PROFILE_DIR
      ? join(process.env.FUNCX_PROFILE_DIR, 'submit_scripts')
      : process.env.FUNCX_HOME
        ? join(process.env.FUNCX_HOME, 'submit_scripts')
        : '~/.funcx/submit_scripts';
    const dir = options.script_dir ?? fallback;
    if (typeof dir !== 'string' || dir.trim() === '') {
      throw new ConfigError(`LocalChannel option script_dir: ${JSON.stringify(dir)} is not a folder path`);
    }
    this.scriptDir = expandHome(dir);
  }

  run(command: string, options: RunOptions = {}): Promise<CommandResult> {
    for (const name of Object.keys(options.env ?? {})) {
      if (!ENV_NAME.test(name)) throw new ConfigError(`LocalChannel.run: environment variable name ${JSON.stringify(name)} is not valid`);
    }
    return new Promise((resolvePromise) => {
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      let settled = false;
      let exitCode: number | null | undefined;
      const timers: NodeJS.Timeout[] = [];
      // detached: the shell leads a new process group, so a timeout kills everything it started.
      const child = spawn('/bin/sh', ['-c', command], {
        cwd: options.cwd === undefined ? undefined : expandHome(options.cwd),
        env: { ...process.env, ...options.env },
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      this.running.add(child);
      const finish = (code: number | null): void => {
        if (settled) return;
        settled = true;
        for (const t of timers) clearTimeout(t);
        this.running.delete(child);
        child.stdout?.destroy();
        child.stderr?.destroy();
        resolvePromise({ code: timedOut ? null : code, stdout, stderr, timedOut });
      };
      child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('error', (err) => {
        // spawn failed (missing cwd, no /bin/sh): report it like a shell that could not start.
        stderr += `${stderr && !stderr.endsWith('\n') ? '\n' : ''}cannot run command${options.cwd ? ` in ${options.cwd}` : ''}: ${err.message}\n`;
        finish(CANNOT_START);
      });
      child.on('exit', (code) => {
        exitCode = code;
        timers.push(setTimeout(() => finish(exitCode ?? null), DRAIN_AFTER_EXIT_MS));
      });
      child.on('close', (code) => finish(exitCode !== undefined ? exitCode : code));
      child.stdin?.on('error', () => {
        // The command may exit without reading its input (EPIPE); its exit status tells the story.
      });
      child.stdin?.end(options.stdin ?? '');
      if (options.timeoutMs !== undefined && options.timeoutMs > 0) {
        timers.push(
          setTimeout(() => {
            timedOut = true;
            killGroup(child, 'SIGTERM');
            // Not cleared by finish(): members of the group that ignore SIGTERM outlive the shell.
            setTimeout(() => killGroup(child, 'SIGKILL'), KILL_GRACE_MS).unref();
          }, options.timeoutMs),
        );
      }
    });
  }

  /** Relative paths are taken inside {@link scriptDir}; parent folders are created. */
  async writeFile(remotePath: string, content: string | Buffer, mode = 0o644): Promise<string> {
    const path = expandHome(remotePath, this.scriptDir);
    await mkdir(dirname(path), { recursive: true });
    // Write beside and rename, so a reader never sees half a script.
    const tmp = `${path}.tmp-${process.pid}-${Date.now().toString(36)}`;
    await writeFile(tmp, content, { mode });
    await chmod(tmp, mode); // the mode given to writeFile is reduced by the umask
    await rename(tmp, path);
    return path;
  }

  readFile(remotePath: string): Promise<Buffer> {
    return readFile(expandHome(remotePath, this.scriptDir));
  }

  /** Compute nodes reach this machine directly: the address is returned unchanged. */
  async exposePort(localHost: string, localPort: number): Promise<{ host: string; port: number }> {
    return { host: localHost, port: localPort };
  }

  /** Kills commands still running (their whole process group). */
  async close(): Promise<void> {
    for (const child of this.running) killGroup(child, 'SIGKILL');
    this.running.clear();
  }
}

/** Signal the child's process group; it may already be gone. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already exited
    }
  }
}
