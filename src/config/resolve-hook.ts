/**
 * A module resolve hook (registered with `module.register`) that lets a profile anywhere on disk import
 * this package by name, even when no node_modules beside the profile holds it.
 */
interface HookData {
  /** file: URL of the package's entry (dist/src/index.js). */
  entry: string;
}

let entry = '';

export function initialize(data: HookData): void {
  entry = data.entry;
}

type NextResolve = (specifier: string, context: unknown) => Promise<{ url: string }>;

export async function resolve(specifier: string, context: unknown, next: NextResolve): Promise<{ url: string; shortCircuit?: boolean }> {
  if (specifier === 'funcx-endpoint') return { url: entry, shortCircuit: true };
  return next(specifier, context);
}
