/** `node dist/test/bench/strategy-only.js`: just the strategy workloads (they need the Slurm test cluster). */
import { benchStrategy } from './strategy-bench.js';
console.log(JSON.stringify(await benchStrategy((m) => console.error(`… ${m}`))));
process.exit(0);
