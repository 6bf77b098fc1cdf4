/** `node dist/test/bench/e2e-only.js`: just the end-to-end figures. */
import { benchEndToEnd } from './e2e-bench.js';
console.log(JSON.stringify(await benchEndToEnd((m) => console.error(`… ${m}`))));
process.exit(0);
