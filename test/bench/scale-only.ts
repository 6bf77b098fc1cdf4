/** `node dist/test/bench/scale-only.js [MANAGERS]`: just the simulated-manager scale figures. */
import { benchScale } from './scale-bench.js';
console.log(JSON.stringify(await benchScale((m) => console.error(`… ${m}`), Number(process.argv[2] ?? 2048))));
process.exit(0);
