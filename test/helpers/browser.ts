/**
 * A real headless Chromium for browser tests: Debian's `chromium` (test/cluster/packages.txt), driven by
 * playwright-core (no browser download), with a new empty profile per launch. Screenshots go under
 * test-output/ (FUNCX_TEST_OUTPUT to choose), which a CI run keeps as an artifact.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

/** Where screenshots go. */
export function outputDir(): string {
  const dir = process.env.FUNCX_TEST_OUTPUT ?? fileURLToPath(new URL('../../../test-output/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Launch Chromium with a fresh profile; close() also removes the profile. */
export async function launchBrowser(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; test/run-tests.sh does it as root)`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'funcx-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 1000 },
  });
  let closing: Promise<void> | undefined;
  return {
    context,
    close: () => (closing ??= context.close().finally(() => rmSync(profile, { recursive: true, force: true }))),
  };
}
