/**
 * Runs one task body: a JS function given as source, a shell command, or an MPI command.
 * Returns an Outcome; never throws (an exception becomes {ok:false, error}).
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { decodeArgs, type Outcome, type ShellResult, type TaskBody } from '../protocol/payload.js';
import { placementEnv, runPlacedMpi } from './mpi/run-mpi.js';

type AnyFunction = (...args: unknown[]) => unknown;

let requireFromCwd: NodeJS.Require | undefined;
function functionRequire(): NodeJS.Require {
  requireFromCwd ??= createRequire(join(process.cwd(), 'funcx-function.js'));
  return requireFromCwd;
}

/** Compiled functions by function id: each is compiled once per worker. */
const compiled = new Map<string, AnyFunction>();

function compile(functionId: string, source: string): AnyFunction {
  let fn = compiled.get(functionId);
  if (fn === undefined) {
    // The source is a function expression or declaration; wrap it so both forms evaluate to the function.
    // `require` is in scope (resolved from the worker's working folder, where a job's packages are), as is
    // `await import(...)`, so functions can load modules the way users expect.
    const made = new Function('require', `"use strict"; return (${source});`)(functionRequire()) as unknown;
    if (typeof made !== 'function') throw new TypeError(`function ${functionId} source does not evaluate to a function`);
    fn = made as AnyFunction;
    compiled.set(functionId, fn);
  }
  return fn;
}

export function errorInfo(err: unknown): { type: string; message: string; stack?: string } {
  if (err instanceof Error) return { type: err.constructor?.name || err.name, message: err.message, stack: err.stack };
  return { type: typeof err, message: String(err) };
}

/** Run the body; sync functions return a value (no promise) so the hot path allocates no promise. */
export function execute(body: TaskBody, mpiLauncher: string): Outcome | Promise<Outcome> {
  try {
    switch (body.kind) {
      case 'js': {
        const fn = compile(body.functionId, body.source);
        // On an MPI block the function may spawn its own MPI program under $FUNCX_MPI_PREFIX (one task per worker).
        if (body.placement) Object.assign(process.env, placementEnv(body.placement, body.resources?.num_ranks));
        const value = fn(...decodeArgs(body.args));
        if (value instanceof Promise) {
          return value.then(
            (v) => ({ ok: true as const, value: v }),
            (err) => ({ ok: false as const, error: errorInfo(err) }),
          );
        }
        return { ok: true, value };
      }
      case 'shell':
        return runShell(body.command, body.walltimeMs, body.cwd, body.placement ? { ...body.env, ...placementEnv(body.placement, body.resources?.num_ranks) } : body.env).then((value) => ({ ok: true as const, value }));
      case 'mpi':
        if (body.placement) return runPlacedMpi({ ...body, placement: body.placement }, runShell);
        return runShell(`${mpiLauncher.replace('{ranks}', String(body.ranks))} ${body.command}`, body.walltimeMs).then(
          (value) => ({ ok: true as const, value }),
        );
      default: {
        const never: never = body;
        return { ok: false, error: { type: 'InvalidTask', message: `unknown task kind ${JSON.stringify(never)}` } };
      }
    }
  } catch (err) {
    return { ok: false, error: errorInfo(err) };
  }
}

/** Run a shell command; after walltimeMs its process group is killed and returncode is 124. */
export function runShell(command: string, walltimeMs?: number, cwd?: string, env?: Record<string, string>): Promise<ShellResult> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {
      cwd,
      env: env ? { ...process.env, ...env } : process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const out: Buffer[] = [];
    const errs: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => errs.push(c));
    let timedOut = false;
    const timer =
      walltimeMs && walltimeMs > 0
        ? setTimeout(() => {
            timedOut = true;
            try {
              process.kill(-child.pid!, 'SIGKILL');
            } catch {
              /* already gone */
            }
          }, walltimeMs)
        : undefined;
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      resolve({ returncode: 127, stdout: '', stderr: err.message, timedOut: false });
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({
        returncode: timedOut ? 124 : (code ?? (signal ? 128 + 9 : 1)),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(errs).toString('utf8'),
        timedOut,
      });
    });
  });
}
