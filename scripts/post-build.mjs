// After tsc: make the CLI entry points executable (npm links them as bins).
import { chmodSync, existsSync } from 'node:fs';
for (const name of ['endpoint', 'manager', 'worker', 'service', 'funcx']) {
  const file = new URL(`../dist/src/cli/${name}.js`, import.meta.url);
  if (existsSync(file)) chmodSync(file, 0o755);
}
