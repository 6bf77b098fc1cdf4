/**
 * What SDK users need to build task arguments and read results themselves: the same structured-clone
 * encoding the worker uses (protocol/payload.ts), and turning a function into the source the service stores.
 */
export { encodeArgs, decodeOutcome, RemoteError } from '../protocol/payload.js';
export type { Outcome, RemoteErrorInfo, ShellResult } from '../protocol/payload.js';

/**
 * The source of a function as the worker will compile it (`return (SOURCE)`).
 *
 * Code run through tsx/esbuild keeps function names with calls to a `__name` helper that exists only in
 * the caller's module; such source is wrapped with a local `__name` so it still runs on the worker.
 */
export function functionSource(fn: ((...args: never[]) => unknown) | string): string {
  let source = typeof fn === 'string' ? fn.trim() : fn.toString();
  if (!parses(source)) {
    // A method (`name(x) { ... }`, `async *gen() {...}`) is not an expression; a function keyword makes it one.
    const asFunction = source.replace(/^(async\s+)?/, (prefix) => `${prefix}function `);
    if (parses(asFunction)) source = asFunction;
  }
  if (!/\b__name\s*\(/.test(source)) return source;
  return `(() => { const __name = (target, value) => Object.defineProperty(target, "name", { value, configurable: true }); return (${source}); })()`;
}

/** Compiles (never runs) the source the way the worker does. */
function parses(source: string): boolean {
  try {
    new Function(`"use strict"; return (${source});`);
    return true;
  } catch {
    return false;
  }
}
