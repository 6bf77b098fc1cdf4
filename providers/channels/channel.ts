/** What came back from a command run through a channel. */
export interface CommandResult {
  /** Exit status; null when the command was killed (timeout, signal). */
  code: number | null;
  stdout: string;
  stderr: string;
  /** True when the command was killed because it ran past its timeout. */
  timedOut: boolean;
}

export interface RunOptions {
  /** Kill the command after this long. */
  timeoutMs?: number;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Working directory on the channel's side. */
  cwd?: string;
  /** Bytes written to the command's standard input. */
  stdin?: string;
}

/**
 * A channel runs commands and moves files, here or on a remote login node. It knows nothing of schedulers.
 */
export interface Channel {
  /** "local" or "ssh": shown in status and logs. */
  readonly kind: string;
  /** Folder on the channel's side where submit scripts are written. */
  readonly scriptDir: string;
  /** True when commands run on another host than the endpoint. */
  readonly isRemote: boolean;
  /** Run a shell command line (interpreted by /bin/sh on the channel's side). Never throws for a non-zero exit. */
  run(command: string, options?: RunOptions): Promise<CommandResult>;
  /** Write `content` to `remotePath` on the channel's side with the given mode; returns the path. */
  writeFile(remotePath: string, content: string | Buffer, mode?: number): Promise<string>;
  /** Read a file on the channel's side (e.g. a job's output tail). */
  readFile(remotePath: string): Promise<Buffer>;
  /**
   * Make a TCP port of the endpoint reachable from the channel's side (compute nodes).
   * Local channels return the address unchanged; SSH channels set up a reverse forward and return the
   * address managers should dial instead.
   */
  exposePort(localHost: string, localPort: number): Promise<{ host: string; port: number }>;
  /** Connect now (remote channels), so `scriptDir` is resolved and errors show at start. Optional. */
  connect?(): Promise<void>;
  close(): Promise<void>;
}
