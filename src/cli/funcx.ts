#!/usr/bin/env node
/**
 * `funcx`: the user's CLI over the SDK. Register a function from a JS/TS module, run it, run a shell
 * command, list endpoints, show who you are and a task's transitions. Token from FUNCX_TOKEN or the home's
 * credentials.json; service URL from FUNCX_SERVICE_URL or credentials.json.
 */
import { Command, InvalidArgumentError } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';
import { FuncxError } from '../errors.js';
import { handle } from './handle.js';
import { FuncXClient, type EndpointInfo } from '../sdk/client.js';
import { MPIFunction, ShellFunction, shellQuote, withResources } from '../sdk/functions.js';
import { addResourceOptions, resourcesFromFlags, type ResourceFlags } from './resource-options.js';
import { RemoteError, type ShellResult } from '../sdk/serialize.js';

/** JSON for any result value: BigInt as string, Map as object, Set as array, undefined as null. */
export function toJson(value: unknown): string {
  return JSON.stringify(value ?? null, (_key, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v instanceof Map) return Object.fromEntries(v);
    if (v instanceof Set) return [...v];
    if (v instanceof Error) return { name: v.name, message: v.message };
    return v;
  });
}

/** Column-aligned table; the last column (ids) is never cut or wrapped. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

async function loadFunction(file: string): Promise<(...args: never[]) => unknown> {
  const path = resolve(file);
  if (!existsSync(path)) throw new FuncxError('NOT_FOUND', `${file}: no such file`);
  let mod: { default?: unknown };
  try {
    mod = (await tsImport(pathToFileURL(path).href, import.meta.url)) as { default?: unknown };
  } catch (err) {
    throw new FuncxError('CONFIG', `${file}: cannot load: ${(err as Error).message.split('\n')[0]}`);
  }
  // A module compiled as CommonJS shows its exports under `default`.
  let fn = mod.default;
  if (fn && typeof fn === 'object' && typeof (fn as { default?: unknown }).default === 'function') fn = (fn as { default: unknown }).default;
  if (typeof fn !== 'function') {
    throw new FuncxError('CONFIG', `${file}: the default export must be a function (found ${fn === undefined ? 'no default export' : typeof fn})`, [
      'write `export default function name(...) { ... }`',
    ]);
  }
  return fn as (...args: never[]) => unknown;
}

function parseArgs(json: string): unknown[] {
  let args: unknown;
  try {
    args = JSON.parse(json);
  } catch (err) {
    throw new InvalidArgumentError(`not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(args)) throw new InvalidArgumentError('must be a JSON array of arguments, e.g. [1, 2]');
  return args;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a number of seconds > 0');
  return n;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a whole number > 0');
  return n;
}

const out = (text: string): void => void process.stdout.write(text);
const client = () => new FuncXClient();

const program = new Command('funcx').description('Run functions on funcX endpoints.');

program
  .command('register-function <file>')
  .description('register the default export of a JS or TS module; prints the function id')
  .requiredOption('--name <name>', 'function name')
  .option('--group <group>', 'share with the members of this group (id or name)')
  .action(async (file: string, o: { name: string; group?: string }) => {
    const fn = await loadFunction(file);
    out((await client().registerFunction(fn, { name: o.name, group: o.group })) + '\n');
  });

addResourceOptions(program
  .command('run'))
  .description('run a registered function and print its result as JSON')
  .requiredOption('--endpoint <id>', 'endpoint id')
  .requiredOption('--function <id>', 'function id')
  .option('--args <json>', 'JSON array of arguments', parseArgs, [])
  .option('--timeout <seconds>', 'give up waiting after this long', seconds)
  .action(async (o: { endpoint: string; function: string; args: unknown[]; timeout?: number } & ResourceFlags) => {
    const resources = resourcesFromFlags(o);
    const c = client();
    const taskId = await c.run(o.endpoint, resources ? withResources(o.function, resources) : o.function, ...o.args);
    try {
      out(toJson(await c.getResult(taskId, { waitMs: o.timeout ? o.timeout * 1000 : undefined })) + '\n');
    } catch (err) {
      if (err instanceof RemoteError) throw new FuncxError('REMOTE', `task ${taskId} failed: ${err.message}`);
      throw err;
    }
  });

addResourceOptions(program
  .command('shell'))
  .description('run a shell command on an endpoint; prints its output and exits with its code')
  .option('--mpi', 'run the command under the MPI launch prefix of its nodes (an MPIFunction)')
  .requiredOption('--endpoint <id>', 'endpoint id')
  .option('--walltime-ms <ms>', 'kill the command after this long', positiveInt)
  .option('--timeout <seconds>', 'give up waiting after this long', seconds)
  .argument('<command...>', 'the command (after --); one argument is a command line, several are quoted words')
  .action(async (words: string[], o: { endpoint: string; walltimeMs?: number; timeout?: number; mpi?: boolean } & ResourceFlags) => {
    const command = words.length === 1 ? words[0] : words.map(shellQuote).join(' ');
    const resources = resourcesFromFlags(o);
    const c = client();
    const shell = ShellFunction(command, { walltimeMs: o.walltimeMs });
    const runnable = o.mpi
      ? MPIFunction(command, { resources: resources ?? {}, walltimeMs: o.walltimeMs })
      : resources ? withResources(shell, resources) : shell;
    const taskId = await c.run(o.endpoint, runnable);
    let result: ShellResult;
    try {
      result = await c.getResult<ShellResult>(taskId, { waitMs: o.timeout ? o.timeout * 1000 : undefined });
    } catch (err) {
      if (err instanceof RemoteError) throw new FuncxError('REMOTE', `task ${taskId} failed: ${err.message}`);
      throw err;
    }
    out(result.stdout);
    process.stderr.write(result.stderr);
    if (result.timedOut) process.stderr.write(`funcx: the command ran past its walltime of ${o.walltimeMs} ms and was killed\n`);
    process.exitCode = result.returncode;
  });

program
  .command('endpoints')
  .description('list the endpoints you can use')
  .option('--json', 'print JSON')
  .action(async (o: { json?: boolean }) => {
    const endpoints: EndpointInfo[] = await client().listEndpoints();
    if (o.json) return out(JSON.stringify(endpoints, null, 2) + '\n');
    if (endpoints.length === 0) return out('No endpoints yet: start one with `funcx-endpoint start`.\n');
    out(table(['Endpoint Name', 'Status', 'Owner', 'Queued', 'Endpoint ID'], endpoints.map((e) => [e.name, e.state, e.owner, String(e.queued), e.endpointId])));
  });

program
  .command('whoami')
  .description('show the user your token belongs to')
  .option('--json', 'print JSON')
  .action(async (o: { json?: boolean }) => {
    const c = client();
    const me = await c.whoami();
    if (o.json) return out(JSON.stringify({ ...me, serviceUrl: c.serviceUrl }) + '\n');
    out(`${me.name} (${me.userId}) at ${c.serviceUrl}${me.groups.length ? `; groups: ${me.groups.join(', ')}` : ''}\n`);
  });

program
  .command('transitions <taskId>')
  .description("show a task's states with who moved it and when")
  .option('--json', 'print JSON')
  .action(async (taskId: string, o: { json?: boolean }) => {
    const transitions = await client().getTransitions(taskId);
    if (o.json) return out(JSON.stringify(transitions, null, 2) + '\n');
    out(table(['At', 'Actor', 'State'], transitions.map((t) => [t.at, t.actor, t.state])));
  });

const group = program.command('group').description('share functions with groups of users');
group
  .command('create <name>')
  .description('create a group (prints its id)')
  .action(async (name: string) => out((await client().createGroup(name)) + '\n'));
group
  .command('add <group> <user>')
  .description('invite a user to a group you own (they join with `funcx group accept`)')
  .action(async (g: string, user: string) => {
    await client().addGroupMember(g, user);
    out(`invited ${user} to ${g} (if such a user exists); they join with \`funcx group accept ${g}\`\n`);
  });
group
  .command('uninvite <group> <user>')
  .description('withdraw an invitation to a group you own')
  .action(async (g: string, user: string) => {
    await client().withdrawInvitation(g, user);
    out(`withdrew any invitation of ${user} to ${g}\n`);
  });
group
  .command('invitations')
  .description('groups you were invited to')
  .action(async () => {
    const invitations = await client().listInvitations();
    out(table(['Group', 'Id', 'Owner'], invitations.map((i) => [i.name, i.groupId, i.owner])));
  });
group
  .command('accept <group>')
  .description('join a group you were invited to')
  .action(async (g: string) => {
    await client().acceptInvitation(g);
    out(`joined ${g}\n`);
  });
group
  .command('decline <group>')
  .description('decline an invitation')
  .action(async (g: string) => {
    await client().declineInvitation(g);
    out(`declined ${g}\n`);
  });
group
  .command('leave <group>')
  .description('leave a group')
  .action(async (g: string) => {
    await client().leaveGroup(g);
    out(`left ${g}\n`);
  });
group
  .command('remove <group> <user>')
  .description('remove a member from a group you own')
  .action(async (g: string, user: string) => {
    await client().removeGroupMember(g, user);
    out(`removed ${user} from ${g}\n`);
  });
group
  .command('delete <group>')
  .description('delete a group you own: what was shared with it is no longer shared')
  .action(async (g: string) => {
    await client().deleteGroup(g);
    out(`deleted group ${g}\n`);
  });

program
  .command('delete-function <functionId>')
  .description('delete a function you own (tasks still queued for it fail with FunctionNotFound)')
  .action(async (id: string) => {
    await client().deleteFunction(id);
    out(`deleted function ${id}\n`);
  });

program
  .command('delete-endpoint <endpointId>')
  .description('delete an endpoint you own at the service (its unfinished tasks fail)')
  .action(async (id: string) => {
    await client().deleteEndpoint(id);
    out(`deleted endpoint ${id}\n`);
  });

const token = program.command('token').description('your API token');
token
  .command('rotate')
  .description('get a new token (printed once); the current one stops working at once')
  .action(async () => {
    const fresh = await client().rotateToken();
    process.stderr.write('Your new token is printed below; the old one no longer works (update FUNCX_TOKEN or credentials.json):\n');
    out(fresh + '\n');
  });

program.parseAsync(process.argv).catch((err: unknown) => handle(err));
