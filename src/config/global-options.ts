/**
 * The global options in `$FUNCX_HOME/config.ts` (the seed's `global_options`): service URL, username, email,
 * broker address/port and the `endpoint_address` managers dial when a profile's engine names none. Loaded with
 * the same tsx mechanism as profiles (it may import `addressByHostname` from 'funcx-endpoint'), checked field
 * by field; a missing file means the defaults.
 */
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../errors.js';
import { registerPackageResolver } from './load.js';
import { addressByHostname } from './addresses.js';
import { DEFAULTS } from './defaults.js';
import { fieldError, unknownField } from './field-error.js';
import type { FuncxHome, GlobalOptions } from '../endpoint/daemon/home.js';

/** Service URL used when neither FUNCX_SERVICE_URL nor the home says otherwise. @default "http://127.0.0.1:8080" */
export const DEFAULT_SERVICE_URL = DEFAULTS.global.service_url;

/** The service URL for a new home: FUNCX_SERVICE_URL, else DEFAULT_SERVICE_URL. */
export function defaultServiceUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env.FUNCX_SERVICE_URL || DEFAULT_SERVICE_URL;
}

/**
 * Defaults of every global option.
 * service_url: FUNCX_SERVICE_URL or http://127.0.0.1:8080; username: the login name; email: "";
 * broker_address: "127.0.0.1"; broker_port: 8088; endpoint_address: this host's name (the seed's address_by_hostname()).
 */
export function defaultGlobalOptions(env: NodeJS.ProcessEnv = process.env): GlobalOptions {
  return {
    service_url: defaultServiceUrl(env),
    username: userInfo().username,
    email: DEFAULTS.global.email,
    broker_address: DEFAULTS.global.broker_address,
    broker_port: DEFAULTS.global.broker_port,
    endpoint_address: addressByHostname(),
  };
}

const HOST = /^[A-Za-z0-9.:_-]+$/;

type Check = (value: unknown) => string | undefined;

/** Each field's rule: undefined when fine, else what was expected. */
const RULES: Record<keyof GlobalOptions, Check> = {
  service_url: (v) => {
    if (typeof v !== 'string') return 'an http(s) URL string';
    try {
      const u = new URL(v);
      return u.protocol === 'http:' || u.protocol === 'https:' ? undefined : 'an http(s) URL';
    } catch {
      return 'an http(s) URL';
    }
  },
  username: (v) => (typeof v === 'string' && v.trim() !== '' ? undefined : 'a non-empty string'),
  email: (v) => (typeof v === 'string' && (v === '' || /^[^\s@]+@[^\s@]+$/.test(v)) ? undefined : 'an email address (or "")'),
  broker_address: (v) => (typeof v === 'string' && HOST.test(v) ? undefined : 'a host name or IP address'),
  broker_port: (v) => (Number.isInteger(v) && (v as number) > 0 && (v as number) <= 65535 ? undefined : 'a port number 1-65535'),
  endpoint_address: (v) => (typeof v === 'string' && HOST.test(v) ? undefined : 'a host name or IP address'),
};

/** Check a loaded options object; ConfigError names `file` and the field. Missing fields take the defaults. */
export function checkGlobalOptions(value: unknown, file: string, defaults: GlobalOptions = defaultGlobalOptions()): GlobalOptions {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw fieldError('the default export', '`export default { service_url, username, ... }`', value === undefined ? 'no default export' : typeof value, file);
  }
  const given = value as Record<string, unknown>;
  const known = Object.keys(RULES);
  for (const key of Object.keys(given)) {
    if (!known.includes(key)) throw unknownField(key, known, file);
  }
  const result = { ...defaults };
  for (const key of known as Array<keyof GlobalOptions>) {
    if (given[key] === undefined) continue;
    const expected = RULES[key](given[key]);
    if (expected) throw fieldError(key, expected, given[key], file);
    (result as Record<string, unknown>)[key] = given[key];
  }
  return result;
}

/** Options accepted for the seed's sake that do nothing here; setting one earns a one-line warning. */
export const NO_EFFECT_OPTIONS: readonly (keyof GlobalOptions)[] = ['broker_address', 'broker_port'];

/** One line per no-effect option the file sets. */
export function globalOptionWarnings(value: unknown, file: string): string[] {
  if (value === null || typeof value !== 'object') return [];
  return NO_EFFECT_OPTIONS.filter((k) => (value as Record<string, unknown>)[k] !== undefined).map(
    (k) => `${file}: ${k} has no effect here (tasks reach endpoints through the service's forwarder); remove it to silence this warning`,
  );
}

/**
 * Load and check `$FUNCX_HOME/config.ts`; the defaults when it does not exist. `warn` gets one line per
 * option that is accepted but has no effect here (broker_address, broker_port).
 */
export async function loadGlobalOptions(home: FuncxHome, warn: (line: string) => void = () => {}): Promise<GlobalOptions> {
  const file = home.globalConfigFile;
  if (!existsSync(file)) return defaultGlobalOptions();
  registerPackageResolver();
  let mod: Record<string, unknown>;
  try {
    const { tsImport } = await import('tsx/esm/api');
    mod = (await tsImport(pathToFileURL(file).href, import.meta.url)) as Record<string, unknown>;
  } catch (err) {
    const e = err as Error;
    throw new ConfigError(`${file}: cannot load the global options: ${e.message.split('\n').slice(0, 6).join('\n')}`);
  }
  // ESM: the default export (or the seed's name, `global_options`); CommonJS: module.exports.default.
  let value = mod.default ?? mod.global_options;
  const inner = value as { default?: unknown; global_options?: unknown } | undefined;
  if (inner && typeof inner === 'object' && !('service_url' in inner) && (inner.default ?? inner.global_options) !== undefined) {
    value = inner.default ?? inner.global_options;
  }
  const options = checkGlobalOptions(value, file);
  for (const line of globalOptionWarnings(value, file)) warn(line);
  return options;
}
