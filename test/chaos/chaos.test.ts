/**
 * The chaos suite's short run as tests (CI: `node --test dist/test/chaos/`): every case of `npm run chaos
 * -- --short` (200 tasks each) against real processes, and for each: no task lost, every task answered
 * exactly once (completed + failed = submitted), and every failure an explicit error of the kind the break
 * explains. The Slurm case starts the test cluster itself and fails, naming what is missing, when it cannot.
 * The PostgreSQL cases (replica-kill, postgres-restart: about 25 s together) start the test server or one
 * of their own; they need root and are skipped, saying so, without it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CASES } from './cases.js';
import { runCase, runOptions, skipReason } from './run-case.js';

/** Errors a break may explain: a killed worker's task, a lost manager's task after its retries. */
const EXPLAINED_FAILURES = new Set(['WorkerLost', 'ManagerLost']);

for (const c of CASES) {
  test(`chaos (short): ${c.title}: no task lost`, { timeout: 150_000, skip: skipReason(c) ?? false }, async () => {
    const r = await runCase(c, runOptions(true));
    const story = `\n${r.notes.map((n) => `  - ${n}`).join('\n')}`;
    assert.equal(r.error, undefined, `the case did not run as designed: ${r.error}${story}`);
    assert.equal(r.lost, 0, `${r.lost} of ${r.submitted} tasks lost (last states ${JSON.stringify(r.lostStates)}, ${r.wrong} wrong values)${story}`);
    assert.equal(r.completed + r.failed, r.submitted, `completed ${r.completed} + failed ${r.failed} ≠ submitted ${r.submitted}${story}`);
    for (const [type, n] of Object.entries(r.failureTypes)) {
      assert.ok(EXPLAINED_FAILURES.has(type), `${n} task(s) failed with ${type}, which ${c.name} does not explain${story}`);
    }
  });
}
