/**
 * `funcx-endpoint list [--json]`: every profile in the home with its state, in the seed's table:
 * Initialized (configured, never registered: id None), Active (its daemon holds a live lease), Inactive
 * (registered, not running). A lease left by a crash or a reboot is stale, so it reads Inactive.
 */
import type { Command } from 'commander';
import type { FuncxHome } from '../../endpoint/daemon/home.js';
import { leaseIsLive, readLease } from '../../endpoint/daemon/lease.js';
import type { CliContext } from '../context.js';
import { gridTable } from '../table.js';

/** An endpoint's state, in the seed's words. */
export type EndpointStatus = 'Initialized' | 'Active' | 'Inactive';

export interface EndpointRow {
  name: string;
  status: EndpointStatus;
  /** The service's id; null until registered. */
  id: string | null;
  /** The username and email it registered with (global options); null until registered. */
  username: string | null;
  email: string | null;
}

/** The state of endpoint `name` from its endpoint.json and lease. */
export function endpointRow(home: FuncxHome, name: string, now: number = Date.now()): EndpointRow {
  const info = home.readEndpointInfo(name);
  const id = info?.id ?? null;
  const lease = readLease(home.pidFile(name));
  const status: EndpointStatus = lease && leaseIsLive(lease, now) ? 'Active' : id ? 'Inactive' : 'Initialized';
  return { name, status, id, username: info?.metadata?.username ?? null, email: info?.metadata?.email ?? null };
}

/** Every configured endpoint's row, sorted by name. */
export function endpointRows(home: FuncxHome): EndpointRow[] {
  const now = Date.now();
  return home.endpointNames().map((name) => endpointRow(home, name, now));
}

export function registerListCommand(program: Command, ctx: CliContext): void {
  program
    .command('list')
    .description('list the endpoints in the funcX home with their status and id')
    .option('--json', 'print a JSON array of {name, status, id, username, email}')
    .action((opts: { json?: boolean }) => {
      const rows = endpointRows(ctx.home);
      if (opts.json) {
        ctx.out(JSON.stringify(rows));
        return;
      }
      const table = gridTable(['Endpoint Name', 'Status', 'Endpoint ID'], rows.map((r) => [r.name, r.status, r.id ?? 'None']));
      for (const line of table) ctx.out(line);
      if (rows.length === 0) ctx.err(`No endpoints in ${ctx.home.root} yet: create one with \`funcx-endpoint configure NAME\`.`);
    });
}
