// Build once when dist/ is missing or older than the sources, so `npm run demo` works on a fresh clone.
import { execSync } from 'node:child_process';
import { existsSync, statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname; // the package root (this file is test/ensure-built.mjs)
if (!existsSync(join(root, 'node_modules', 'zeromq'))) {
  console.error('installing npm packages (first run)…');
  execSync('npm ci --no-audit --no-fund', { cwd: root, stdio: 'inherit' });
}
function newest(dir) {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) t = Math.max(t, newest(p));
    else if (p.endsWith('.ts') || p.endsWith('.hbs')) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}
const stamp = join(root, 'dist', 'src', 'index.js');
const sources = Math.max(...['src', 'providers', 'launchers', 'test', 'examples', 'web'].filter((d) => existsSync(join(root, d))).map((d) => newest(join(root, d))));
if (!existsSync(stamp) || statSync(stamp).mtimeMs < sources) {
  console.error('building (tsc)…');
  execSync('npm run build', { cwd: root, stdio: 'inherit' });
}
