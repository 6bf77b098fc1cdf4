/**
 * Loading a profile: `config.ts` (TypeScript, run through tsx) or `config.yaml`. A profile anywhere on disk
 * may `import { Config, SlurmProvider } from 'funcx-endpoint'`; a resolve hook maps the name to this package.
 * Every error names the file (and the field, when the Config says which).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Module, { register } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.js';
import { Config } from './config.js';
import { configFromYaml } from './yaml-profile.js';

let hookRegistered = false;

/** Let profiles import 'funcx-endpoint' by name, wherever they live. */
export function registerPackageResolver(): void {
  if (hookRegistered) return;
  hookRegistered = true;
  const entry = new URL('../index.js', import.meta.url).href;
  // ESM profiles (a package.json with "type": "module" nearby, or .mts) resolve through this hook ...
  register(new URL('./resolve-hook.js', import.meta.url), { data: { entry } });
  // ... and CommonJS ones (the default for a .ts file outside any package) through require's resolver;
  // Node ≥ 20.19 lets require() load our ES module.
  const entryPath = fileURLToPath(entry);
  const cjs = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const original = cjs._resolveFilename;
  cjs._resolveFilename = function (request: string, ...rest: unknown[]): string {
    if (request === 'funcx-endpoint') return entryPath;
    return original.call(this, request, ...rest);
  };
}

/** The profile file in a folder: config.ts first, then config.yaml / config.yml. */
export function profileFile(dir: string): string | undefined {
  for (const name of ['config.ts', 'config.yaml', 'config.yml']) {
    const path = join(dir, name);
    if (existsSync(path)) return path;
  }
  return undefined;
}

export async function loadConfigFile(file: string): Promise<Config> {
  if (/\.ya?ml$/.test(file)) {
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`${file}: not valid YAML: ${(err as Error).message}`);
    }
    process.env.FUNCX_PROFILE_DIR = dirname(file);
    return configFromYaml(doc, file);
  }
  registerPackageResolver();
  let mod: { default?: unknown; config?: unknown };
  // Providers built by the profile look for job templates in the profile's folder first.
  process.env.FUNCX_PROFILE_DIR = dirname(file);
  try {
    const { tsImport } = await import('tsx/esm/api');
    mod = (await tsImport(pathToFileURL(file).href, import.meta.url)) as typeof mod;
  } catch (err) {
    // The profile's ConfigError is a twin class (see isConfig), so tell it by its code.
    const code = (err as { code?: unknown }).code;
    if (code === 'CONFIG') throw new ConfigError(`${file}: ${(err as Error).message}`, (err as ConfigError).suggestions ?? []);
    const e = err as Error;
    throw new ConfigError(`${file}: cannot load the profile: ${e.message.split('\n').slice(0, 6).join('\n')}`);
  }
  let value = mod.default ?? mod.config;
  // A CommonJS profile comes back as { default: module.exports }, whose own `default` is the Config.
  const inner = (value as { default?: unknown } | undefined)?.default;
  if (!isConfig(value) && isConfig(inner)) value = inner;
  if (!isConfig(value)) {
    throw new ConfigError(`${file}: the profile must \`export default new Config({...})\` (got ${value === undefined ? 'no default export' : typeof value})`, [
      "import { Config } from 'funcx-endpoint';",
    ]);
  }
  return value;
}

/**
 * tsx loads a profile's imports in a namespace of its own, so its Config is a twin of ours, not the same
 * class: recognise it by shape. It was checked by its own constructor.
 */
function isConfig(value: unknown): value is Config {
  if (value instanceof Config) return true;
  const v = value as Partial<Config> | null;
  return typeof v === 'object' && v !== null && v.constructor?.name === 'Config' && typeof v.engine === 'object' && typeof v.provider?.submit === 'function';
}

/** Load the profile in `dir`; ConfigError when it has none. */
export async function loadProfile(dir: string): Promise<Config> {
  const file = profileFile(dir);
  if (!file) throw new ConfigError(`${dir}: no config.ts or config.yaml (run \`funcx-endpoint configure\`)`);
  return loadConfigFile(file);
}
