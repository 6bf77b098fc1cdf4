/**
 * A tiny leveled logger writing one line per event ("2026-11-25T17:00:00.000Z INFO [interchange] ...").
 * Hot paths log at debug only. `rateLimited` keeps floods (fuzzed frames) from filling the disk.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  child(component: string): Logger;
  readonly level: LogLevel;
}

export function createLogger(
  component: string,
  level: LogLevel = (process.env.FUNCX_LOG_LEVEL as LogLevel) || 'info',
  write: (line: string) => void = (line) => process.stderr.write(line + '\n'),
): Logger {
  const min = ORDER[level] ?? ORDER.info;
  const emit = (lvl: LogLevel, message: string): void => {
    if (ORDER[lvl] >= min) write(`${new Date().toISOString()} ${lvl.toUpperCase()} [${component}] ${message}`);
  };
  return {
    level,
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
    child: (sub) => createLogger(`${component}.${sub}`, level, write),
  };
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = {
  level: 'error',
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

/** Logs at most `burst` messages per `windowMs`, then one line saying how many were suppressed. */
export function rateLimited(log: (m: string) => void, burst = 20, windowMs = 10_000): (m: string) => void {
  let windowStart = 0;
  let count = 0;
  let suppressed = 0;
  return (message: string) => {
    const now = Date.now();
    if (now - windowStart > windowMs) {
      if (suppressed > 0) log(`(${suppressed} similar messages suppressed)`);
      windowStart = now;
      count = 0;
      suppressed = 0;
    }
    if (count++ < burst) log(message);
    else suppressed++;
  };
}
