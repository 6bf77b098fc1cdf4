/**
 * Running one command over an SSH connection, with a timeout that kills the command's whole process group
 * on the remote side.
 */
import type { Client as SSHClient } from 'ssh2';
import { FuncxError } from '../../src/errors.js';
import type { CommandResult } from './channel.js';
import { shQuote } from './ssh-relay.js';

const KILL_GRACE_MS = 1000;

/** A command ready to send: env and cwd already resolved to remote paths. */
export interface ExecRequest {
  command: string;
  env?: Record<string, string>;
  /** Absolute remote folder to run in. */
  cwd?: string;
  stdin?: string;
  /** 0: no timeout. */
  timeoutMs: number;
  /** user@host:port, for messages. */
  target: string;
}

/**
 * The line sent to sshd. Whatever the user's login shell (bash, tcsh, ...), it parses only a plain
 * `exec /bin/sh -c '…'` whose argument carries the real script in base64, so quotes, `!` and newlines survive.
 * The script first prints its pid on stderr: sshd makes each session's process a process-group leader (and
 * `exec` keeps the pid), so a timeout can kill the whole group.
 */
export function wrapCommand(req: Pick<ExecRequest, 'command' | 'env' | 'cwd'>): string {
  const lines = ['echo $$ >&2'];
  for (const [k, v] of Object.entries(req.env ?? {})) lines.push(`export ${k}=${shQuote(v)}`);
  if (req.cwd !== undefined) lines.push(`cd ${shQuote(req.cwd)} || exit 127`);
  lines.push(req.command);
  const b64 = Buffer.from(lines.join('\n')).toString('base64');
  return `exec /bin/sh -c 'eval "$(echo ${b64} | base64 -d)"'`;
}

/**
 * Run a command; resolves with its result (never rejects for a non-zero exit). Rejects with SSH_CONNECT when
 * no session can be opened. A connection lost mid-command gives code null and a note on stderr.
 */
export function execCommand(client: SSHClient, req: ExecRequest): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    client.exec(wrapCommand(req), (err, ch) => {
      if (err) return reject(new FuncxError('SSH_CONNECT', `${req.target}: cannot start a command: ${err.message}`));
      let stdout = '';
      let rawErr = '';
      let pid: number | undefined;
      let code: number | null | undefined;
      let timedOut = false;
      const timers: NodeJS.Timeout[] = [];
      ch.setEncoding('utf8');
      ch.on('data', (d: string) => (stdout += d));
      ch.stderr.setEncoding('utf8');
      ch.stderr.on('data', (d: string) => {
        rawErr += d;
        if (pid === undefined) {
          const m = /^(\d+)\n/.exec(rawErr);
          if (m) pid = Number(m[1]);
        }
      });
      ch.on('exit', (c: number | null) => (code = typeof c === 'number' ? c : null));
      ch.on('close', () => {
        for (const t of timers) clearTimeout(t);
        let stderr = rawErr.replace(/^\d+\n/, '');
        if (code === undefined && !timedOut) {
          stderr += `${stderr && !stderr.endsWith('\n') ? '\n' : ''}ssh: connection to ${req.target} lost while the command ran\n`;
        }
        resolve({ code: timedOut ? null : (code ?? null), stdout, stderr, timedOut });
      });
      ch.end(req.stdin ?? '');
      if (req.timeoutMs > 0) {
        timers.push(
          setTimeout(() => {
            timedOut = true;
            killRemote(client, pid, 'TERM');
            timers.push(setTimeout(() => killRemote(client, pid, 'KILL'), KILL_GRACE_MS));
            timers.push(setTimeout(() => ch.close(), 2 * KILL_GRACE_MS)); // give up waiting for the remote side
          }, req.timeoutMs),
        );
      }
    });
  });
}

/**
 * Kill a timed-out command's process group on the remote side. Best effort, and on a session of its own
 * outside the channel's session limit, so it works even when every slot is held by stuck commands.
 */
function killRemote(client: SSHClient, pid: number | undefined, signal: 'TERM' | 'KILL'): void {
  if (pid === undefined) return;
  try {
    client.exec(`kill -${signal} -- -${pid} 2>/dev/null || kill -${signal} ${pid} 2>/dev/null`, (err, ch) => {
      if (!err) ch.resume().end();
    });
  } catch {
    // the connection is gone: so is the session, and sshd has closed the command's pipes
  }
}

/** A counting semaphore: at most `n` commands hold an SSH session at once (sshd refuses more than MaxSessions). */
export class SessionLimit {
  private waiting: Array<() => void> = [];
  constructor(private free: number) {}
  acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((res) => this.waiting.push(res));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}
