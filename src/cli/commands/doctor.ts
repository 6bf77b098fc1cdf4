/**
 * `funcx-endpoint doctor [NAME] [--json]`: check an endpoint before starting it and print a checklist:
 * the global options and the profile load; the scheduler's commands are found through the provider's
 * channel (over SSH too); endpoint_address resolves to this machine and can be listened on; the job template
 * is found and renders; keys and credentials are private. Exits 1 when any check failed.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { FuncxError } from '../../errors.js';
import { DEFAULT_ENDPOINT, type GlobalOptions } from '../../endpoint/daemon/home.js';
import { defaultGlobalOptions, loadGlobalOptions } from '../../config/global-options.js';
import { managerAddress } from '../../config/engine-options.js';
import type { Config } from '../../config/config.js';
import type { FoundTemplate } from '../../../providers/templates.js';
import type { CliContext } from '../context.js';
import { closeProfile, loadEndpointProfile, renderBlockScript } from './render.js';

/** The commands each scheduler's provider runs (submit, status, cancel). */
export const SCHEDULER_COMMANDS: Readonly<Record<string, readonly string[]>> = {
  local: [],
  slurm: ['sbatch', 'squeue', 'scancel'],
  pbspro: ['qsub', 'qstat', 'qdel'],
  torque: ['qsub', 'qstat', 'qdel'],
  cobalt: ['qsub', 'qstat', 'qdel'],
  lsf: ['bsub', 'bjobs', 'bkill'],
  gridengine: ['qsub', 'qstat', 'qdel'],
};

/** One line of the checklist. `warn` is shown but does not fail the run. */
export interface CheckResult {
  check: string;
  result: 'ok' | 'fail' | 'warn';
  detail: string;
}

const MARK = { ok: '✓', fail: '✗', warn: '!' } as const;

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

const octal = (m: number): string => '0' + m.toString(8);

/** Listen on `address` (any port) and close again: proves the interchange could bind there. */
function canListen(address: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err) => resolve((err as Error).message));
    server.listen(0, address, () => server.close(() => resolve(undefined)));
  });
}

async function checkSchedulerCommands(config: Config): Promise<CheckResult> {
  const { provider } = config;
  const check = 'scheduler commands';
  const wanted = SCHEDULER_COMMANDS[provider.label];
  if (wanted === undefined) return { check, result: 'warn', detail: `provider ${provider.label}: no list of commands to check` };
  if (wanted.length === 0) return { check, result: 'ok', detail: 'none needed (local provider)' };
  const where = provider.channel.isRemote ? `over the ${provider.channel.kind} channel` : 'on this machine';
  const script = `for c in ${wanted.join(' ')}; do p=$(command -v "$c") && echo "found $c $p" || echo "missing $c"; done`;
  try {
    const r = await provider.channel.run(script, { timeoutMs: 20_000 });
    if (r.timedOut) return { check, result: 'fail', detail: `looking for ${wanted.join(', ')} ${where} timed out` };
    const missing = wanted.filter((c) => !r.stdout.includes(`found ${c} `));
    if (missing.length) return { check, result: 'fail', detail: `${missing.join(', ')} not found ${where} (PATH of a non-interactive shell)` };
    const paths = wanted.map((c) => /found \S+ (\S+)/.exec(r.stdout.split('\n').find((l) => l.startsWith(`found ${c} `)) ?? '')?.[1] ?? c);
    const impostor = await otherQsub(config);
    if (impostor) return { check, result: 'fail', detail: `${paths.join(', ')} ${where}, but ${impostor}` };
    return { check, result: 'ok', detail: `${paths.join(', ')} ${where}` };
  } catch (err) {
    return { check, result: 'fail', detail: `cannot run commands ${where}: ${(err as Error).message}` };
  }
}

/**
 * PBS Pro, Torque, Cobalt and Grid Engine all name their commands qsub/qstat/qdel: finding `qsub` proves
 * little. Grid Engine's qstat names itself in its help ("SGE 8.1.9"); say so when another scheduler's
 * provider would be talking to it.
 */
async function otherQsub(config: Config): Promise<string | undefined> {
  const label = config.provider.label;
  if (!['pbspro', 'torque', 'cobalt'].includes(label)) return undefined;
  const r = await config.provider.channel.run('qstat -help 2>&1 | head -n 1', { timeoutMs: 10_000 }).catch(() => undefined);
  const first = r?.stdout.trim() ?? '';
  return /^(S?GE|OGS|UGE|OGE) \d/.test(first) ? `that qstat is Grid Engine's (${first}), not ${label}'s` : undefined;
}

async function checkAddress(config: Config, globals: GlobalOptions): Promise<CheckResult> {
  const check = 'endpoint address';
  if (config.provider.channel.isRemote) {
    const why = await canListen('127.0.0.1');
    return why
      ? { check, result: 'fail', detail: `cannot listen on 127.0.0.1 for the reverse forward: ${why}` }
      : { check, result: 'ok', detail: `managers dial back through the ${config.provider.channel.kind} connection (reverse forward to 127.0.0.1)` };
  }
  const address = managerAddress(config.engine, globals.endpoint_address);
  const source = config.engine.address ? 'engine.address' : 'endpoint_address (global options)';
  let resolved: string[];
  try {
    resolved = (await lookup(address, { all: true })).map((a) => a.address);
  } catch (err) {
    return { check, result: 'fail', detail: `${source} ${address} does not resolve: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  const local = new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)));
  const mine = resolved.filter((a) => local.has(a));
  if (mine.length === 0) {
    return { check, result: 'fail', detail: `${source} ${address} resolves to ${resolved.join(', ')}, not an address of this machine` };
  }
  const why = await canListen(mine[0]!);
  if (why) return { check, result: 'fail', detail: `cannot listen on ${mine[0]} (${address}): ${why}` };
  return { check, result: 'ok', detail: `${source} ${address} is ${mine[0]}, a local interface; a listener can be bound there` };
}

async function checkTemplate(config: Config, name: string, globals: GlobalOptions): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const provider = config.provider as typeof config.provider & { findTemplate?: () => FoundTemplate };
  if (typeof provider.findTemplate === 'function') {
    try {
      const t = provider.findTemplate();
      out.push({ check: 'job template', result: 'ok', detail: `${t.path} (${t.origin})` });
    } catch (err) {
      out.push({ check: 'job template', result: 'fail', detail: (err as Error).message });
      return out;
    }
  } else {
    out.push({ check: 'job template', result: 'ok', detail: `none needed (${provider.label} provider writes its own script)` });
  }
  try {
    const script = await renderBlockScript(config, name, globals.endpoint_address);
    out.push({ check: 'script renders', result: 'ok', detail: `${script.split('\n').length} lines (see \`funcx-endpoint render ${name}\`)` });
  } catch (err) {
    out.push({ check: 'script renders', result: 'fail', detail: (err as Error).message });
  }
  return out;
}

function checkKeys(dir: string): CheckResult {
  const check = 'keys';
  if (!existsSync(dir)) return { check, result: 'ok', detail: `${dir} not created yet (made at first start)` };
  const problems: string[] = [];
  if (mode(dir) !== 0o700) problems.push(`${dir} is ${octal(mode(dir))}, expected 0700`);
  for (const file of readdirSync(dir)) {
    const m = mode(join(dir, file));
    if (m & 0o077) problems.push(`${file} is ${octal(m)}, expected 0600`);
  }
  return problems.length
    ? { check, result: 'fail', detail: `${problems.join('; ')} (fix with chmod)` }
    : { check, result: 'ok', detail: `${dir} is 0700 and its files are private` };
}

function checkCredentials(file: string): CheckResult {
  const check = 'credentials';
  if (!existsSync(file)) return { check, result: 'warn', detail: `${file} does not exist: run \`funcx-endpoint init\` (or set FUNCX_TOKEN before start)` };
  const m = mode(file);
  return m & 0o077
    ? { check, result: 'fail', detail: `${file} is ${octal(m)}, expected 0600 (it holds your token): chmod 600 ${file}` }
    : { check, result: 'ok', detail: `${file} is ${octal(m)}` };
}

/** Run every check on endpoint `name`. */
export async function runDoctor(ctx: CliContext, name: string): Promise<CheckResult[]> {
  const { home } = ctx;
  const results: CheckResult[] = [];
  let globals = defaultGlobalOptions();
  try {
    globals = await loadGlobalOptions(home);
    results.push({ check: 'global options', result: 'ok', detail: existsSync(home.globalConfigFile) ? home.globalConfigFile : 'defaults (no config.ts in the home)' });
  } catch (err) {
    results.push({ check: 'global options', result: 'fail', detail: (err as Error).message });
  }
  let config: Config | undefined;
  try {
    config = await loadEndpointProfile(home, name);
    const p = config.provider;
    results.push({ check: 'profile loads', result: 'ok', detail: `${p.label} provider, ${p.launcher.name} launcher, ${p.channel.kind} channel` });
  } catch (err) {
    results.push({ check: 'profile loads', result: 'fail', detail: (err as Error).message });
  }
  if (config) {
    try {
      results.push(await checkSchedulerCommands(config));
      results.push(await checkAddress(config, globals));
      results.push(...(await checkTemplate(config, name, globals)));
    } finally {
      await closeProfile(config);
    }
    results.push(checkKeys(home.keysDir(name)));
  }
  results.push(checkCredentials(home.credentialsFile));
  return results;
}

export function registerDoctorCommand(program: Command, ctx: CliContext): void {
  program
    .command('doctor')
    .description('check an endpoint profile: scheduler commands, endpoint address, job template, file permissions')
    .argument('[name]', 'endpoint name', DEFAULT_ENDPOINT)
    .option('--json', 'print the checks as a JSON array of {check, result, detail}')
    .action(async (name: string, opts: { json?: boolean }) => {
      const results = await runDoctor(ctx, name);
      if (opts.json) ctx.out(JSON.stringify(results));
      else for (const r of results) ctx.out(`${MARK[r.result]} ${r.check}: ${r.detail}`);
      const failed = results.filter((r) => r.result === 'fail').length;
      if (failed) throw new FuncxError('DOCTOR_FAILED', `${failed} of ${results.length} checks failed for endpoint ${name}`);
      if (!opts.json) ctx.out(`Endpoint ${name} looks ready: \`funcx-endpoint start ${name}\`.`);
    });
}
