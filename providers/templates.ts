/**
 * Finding and rendering job templates (Handlebars). Lookup order: the profile's folder, the site folder a
 * sysadmin sets (`$FUNCX_SITE_TEMPLATES`, default /etc/funcx/job-templates), then the templates built into
 * this package. Rendering refuses any context that did not come out of the provider's validation
 * (see script-values.ts): templates use `noEscape`, so an unchecked value would reach the shell as is.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import { ConfigError } from '../src/errors.js';
import { shellQuote } from './script-values.js';

/** Site template folder used when `$FUNCX_SITE_TEMPLATES` is not set. @default "/etc/funcx/job-templates" */
export const DEFAULT_SITE_TEMPLATE_DIR = '/etc/funcx/job-templates';

/** Where a template was found. */
export type TemplateOrigin = 'profile' | 'site' | 'builtin' | 'explicit';

export interface FoundTemplate {
  path: string;
  origin: TemplateOrigin;
}

export interface TemplateLookup {
  /** The default file name for the scheduler, e.g. "slurm.sh.hbs". */
  name: string;
  /** The profile's explicit choice (option `template`): an absolute path, or a name looked up like `name`. */
  template?: string;
  /** The profile's folder (option `profile_dir`). */
  profileDir?: string;
  /** Site folder. @default $FUNCX_SITE_TEMPLATES or DEFAULT_SITE_TEMPLATE_DIR */
  siteDir?: string;
  /** Built-in folder. @default builtinTemplateDir() */
  builtinDir?: string;
}

/** The site template folder from the environment. */
export function siteTemplateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.FUNCX_SITE_TEMPLATES || DEFAULT_SITE_TEMPLATE_DIR;
}

let builtinDirCache: string | undefined;

/**
 * The package's `job-templates/` folder. Compiled code runs from dist/providers/ (two levels down) and
 * sources under tsx from providers/ (one level down): take whichever exists.
 */
export function builtinTemplateDir(): string {
  if (builtinDirCache) return builtinDirCache;
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [resolve(here, '../../job-templates'), resolve(here, '../job-templates')];
  builtinDirCache = candidates.find((dir) => existsSync(join(dir, 'slurm.sh.hbs'))) ?? candidates[1]!;
  return builtinDirCache;
}

/** Find the template to use, or throw ConfigError listing every place looked at. */
export function findTemplate(lookup: TemplateLookup): FoundTemplate {
  const wanted = lookup.template ?? lookup.name;
  if (lookup.template !== undefined && isAbsolute(lookup.template)) {
    if (existsSync(lookup.template)) return { path: lookup.template, origin: 'explicit' };
    throw new ConfigError(`template: ${lookup.template} does not exist`);
  }
  const places: Array<[string | undefined, TemplateOrigin]> = [
    [lookup.profileDir, 'profile'],
    [lookup.siteDir ?? siteTemplateDir(), 'site'],
    [lookup.builtinDir ?? builtinTemplateDir(), 'builtin'],
  ];
  const tried: string[] = [];
  for (const [dir, origin] of places) {
    if (!dir) continue;
    const path = resolve(dir, wanted);
    tried.push(path);
    if (existsSync(path)) return { path, origin: lookup.template !== undefined ? 'explicit' : origin };
  }
  throw new ConfigError(`template: ${JSON.stringify(wanted)} not found (looked in ${tried.join(', ')})`, [
    'set template to an existing file, or put it in the profile folder',
  ]);
}

/** Marks contexts built by a provider's validation; nothing else can be rendered. */
const validated = new WeakSet<object>();

/** Mark `context` as fully validated (every name checked, every env value quoted). */
export function markValidated<T extends object>(context: T): T {
  validated.add(context);
  return context;
}

function makeEnvironment(): typeof Handlebars {
  const hb = Handlebars.create();
  // For site templates that add their own values (e.g. from scheduler_options): quote on demand.
  hb.registerHelper('quote', (value: unknown) => shellQuote(String(value ?? '')));
  return hb;
}

const compiled = new Map<string, { source: string; fn: Handlebars.TemplateDelegate }>();

/**
 * Render template `source` (from `file`, for messages) with a validated context.
 * @throws ConfigError when the template does not compile, uses a missing field, or the context was not validated.
 */
export function renderTemplate(source: string, context: object, file = '<template>'): string {
  if (!validated.has(context)) {
    throw new ConfigError(`refusing to render ${file}: its values were not validated`);
  }
  let entry = compiled.get(file);
  try {
    if (!entry || entry.source !== source) {
      const fn = makeEnvironment().compile(source, { noEscape: true, strict: true });
      entry = { source, fn };
      compiled.set(file, entry);
    }
    return entry.fn(context);
  } catch (err) {
    throw new ConfigError(`template ${file}: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** Find, read and render in one go. */
export async function renderJobTemplate(
  lookup: TemplateLookup,
  context: object,
): Promise<{ script: string; template: FoundTemplate }> {
  const template = findTemplate(lookup);
  const source = await readFile(template.path, 'utf8');
  return { script: renderTemplate(source, context, template.path), template };
}
