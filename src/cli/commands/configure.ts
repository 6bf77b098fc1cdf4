/**
 * `funcx-endpoint configure [NAME] [--template SITE] [--yaml]`: create a profile folder NAME/ in the home with
 * a config.ts (or config.yaml) from the built-in template, or a copy of a sysadmin's profile template. Never
 * overwrites an existing profile.
 */
import { constants, copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { DEFAULT_ENDPOINT, FuncxHome } from '../../endpoint/daemon/home.js';
import { profileFile } from '../../config/load.js';
import type { CliContext } from '../context.js';

/** Site folder used when $FUNCX_SITE_TEMPLATES is not set. @default "/etc/funcx" */
export const DEFAULT_SITE_DIR = '/etc/funcx';

/** Extensions of profile templates, in the order a SITE name is looked up. */
const PROFILE_EXTENSIONS = ['.ts', '.yaml', '.yml'];

/**
 * Folders that may hold a sysadmin's profile templates, in lookup order. `$FUNCX_SITE_TEMPLATES` usually
 * names the job-templates folder (that is how job templates are found), so its sibling `profiles/` is
 * looked at too: FUNCX_SITE_TEMPLATES=/etc/funcx/job-templates finds /etc/funcx/profiles.
 */
export function siteProfileDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const site = env.FUNCX_SITE_TEMPLATES;
  if (!site) return [join(DEFAULT_SITE_DIR, 'profiles')];
  const dirs = [join(site, 'profiles'), join(dirname(resolve(site)), 'profiles')];
  return [...new Set(dirs)];
}

/** Names of the site's profile templates (file names without extension), sorted. */
export function siteProfileNames(env: NodeJS.ProcessEnv = process.env): string[] {
  const names = new Set<string>();
  for (const dir of siteProfileDirs(env)) {
    if (!existsSync(dir)) continue;
    for (const file of readdirSync(dir)) {
      if (PROFILE_EXTENSIONS.includes(extname(file))) names.add(basename(file, extname(file)));
    }
  }
  return [...names].sort();
}

/** The site profile template named `site`; ConfigError listing the available ones when there is none. */
export function findSiteProfile(site: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(site)) throw new ConfigError(`--template ${JSON.stringify(site)}: not a template name`);
  for (const dir of siteProfileDirs(env)) {
    for (const ext of PROFILE_EXTENSIONS) {
      const file = join(dir, site + ext);
      if (existsSync(file)) return file;
    }
  }
  const available = siteProfileNames(env);
  throw new ConfigError(
    `--template ${site}: no such site profile template (looked in ${siteProfileDirs(env).join(', ')})`,
    [available.length ? `available: ${available.join(', ')}` : 'no site profile templates are installed; set FUNCX_SITE_TEMPLATES to the site folder'],
  );
}

/**
 * The package's examples/templates/ folder. Compiled code runs from dist/src/cli/commands/ and sources
 * (under tsx) from src/cli/commands/: take whichever has the template.
 */
export function builtinProfileTemplate(yaml: boolean): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const file = yaml ? 'default.yaml' : 'default.ts';
  for (const root of [resolve(here, '../../../..'), resolve(here, '../../..')]) {
    const path = join(root, 'examples', 'templates', file);
    if (existsSync(path)) return path;
  }
  throw new ConfigError(`the built-in profile template examples/templates/${file} is missing from this installation`);
}

export interface ConfigureOptions {
  /** A site profile template name (from the site folder's profiles/). */
  template?: string;
  /** Write config.yaml from the built-in YAML template. @default false */
  yaml?: boolean;
}

/** Create profile `name`; returns the profile file. ConfigError when it exists or the template is missing. */
export function createProfile(home: FuncxHome, name: string, options: ConfigureOptions = {}): string {
  const dir = home.endpointDir(name);
  const existing = existsSync(dir) ? profileFile(dir) : undefined;
  if (existing) {
    throw new ConfigError(`endpoint ${name} is already configured: ${existing}`, [
      `edit that file, or remove the endpoint with \`funcx-endpoint delete ${name}\` first`,
    ]);
  }
  if (options.template && options.yaml) throw new ConfigError('--template and --yaml cannot be combined (a site template has its own format)');
  const source = options.template ? findSiteProfile(options.template) : builtinProfileTemplate(options.yaml ?? false);
  const target = join(dir, /\.ya?ml$/.test(source) ? 'config.yaml' : 'config.ts');
  home.ensure();
  const created = !existsSync(dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    // COPYFILE_EXCL: if another configure raced us to the same name, fail rather than overwrite.
    copyFileSync(source, target, constants.COPYFILE_EXCL);
  } catch (err) {
    if (created) rmSync(dir, { recursive: true, force: true });
    throw new ConfigError(`cannot write ${target}: ${(err as Error).message}`);
  }
  return target;
}

/** Create profile `name` from the built-in template (for `start` of an unconfigured default); returns its file. */
export function createDefaultProfile(ctx: CliContext, name: string = DEFAULT_ENDPOINT): string {
  const file = createProfile(ctx.home, name);
  ctx.err(`Created the profile of endpoint ${name}: ${file}`);
  return file;
}

export function registerConfigureCommand(program: Command, ctx: CliContext): void {
  program
    .command('configure')
    .description('create an endpoint profile NAME/config.ts in the funcX home (default: "default")')
    .argument('[name]', 'endpoint name', DEFAULT_ENDPOINT)
    .option('--template <site>', "copy the site's profile template SITE (from $FUNCX_SITE_TEMPLATES)")
    .option('--yaml', 'write config.yaml instead of config.ts')
    .action((name: string, opts: { template?: string; yaml?: boolean }) => {
      FuncxHome.checkName(name);
      const file = createProfile(ctx.home, name, opts);
      const from = opts.template ? ` from the site template ${opts.template}` : '';
      ctx.out(`Created the profile of endpoint ${name}${from}: ${file}`);
      ctx.out(`Edit it, then run \`funcx-endpoint start ${name}\` (check it first with \`funcx-endpoint doctor ${name}\`).`);
    });
}
