#!/usr/bin/env node
/** funcx-worker: started by funcx-manager with a socket pair on fd 3. Not meant to be run by hand. */
import { runWorker } from '../worker/worker.js';

const limit = Number(process.env.FUNCX_RESULT_SIZE_LIMIT ?? '');
void runWorker({
  resultSizeLimit: Number.isFinite(limit) && limit > 0 ? limit : undefined,
  mpiLauncher: process.env.FUNCX_MPI_LAUNCHER || undefined,
}).then((code) => process.exit(code));
