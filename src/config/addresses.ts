/**
 * Helpers a profile uses to tell managers where the endpoint listens (Parsl's address_by_* functions).
 */
import { hostname, networkInterfaces } from 'node:os';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';

/** This machine's host name (what compute nodes usually resolve to the login node). */
export function addressByHostname(): string {
  return hostname();
}

/** The first IPv4 address of a network interface, e.g. `addressByInterface('ib0')`. */
export function addressByInterface(ifname: string): string {
  const entries = networkInterfaces()[ifname];
  const v4 = entries?.find((e) => e.family === 'IPv4');
  if (!v4) {
    throw new ConfigError(`addressByInterface: interface ${JSON.stringify(ifname)} has no IPv4 address (have: ${Object.keys(networkInterfaces()).join(', ')})`);
  }
  return v4.address;
}

/** The IPv4 address of the interface that holds the default route (Linux: /proc/net/route). */
export function addressByRoute(): string {
  let table = '';
  try {
    table = readFileSync('/proc/net/route', 'utf8');
  } catch {
    return addressByHostname();
  }
  for (const line of table.split('\n').slice(1)) {
    const [iface, destination] = line.trim().split(/\s+/);
    if (destination === '00000000' && iface) {
      try {
        return addressByInterface(iface);
      } catch {
        /* try the next default route */
      }
    }
  }
  return '127.0.0.1';
}
