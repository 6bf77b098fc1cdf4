// Bundle the dashboard page (web/app.ts + uPlot) with esbuild into dist/web; run by `npm run build`.
// Everything the page needs is served by funcx-service itself: no CDN, works on a private network.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const out = fileURLToPath(new URL('../dist/web/', import.meta.url));
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: `${here}app.ts` },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020'],
  outdir: out,
  loader: { '.css': 'css' },
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(`${here}index.html`, `${out}index.html`);
