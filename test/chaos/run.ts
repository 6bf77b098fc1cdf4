/**
 * `npm run chaos [-- --short] [-- --json] [-- --case NAME ...] [-- --tasks N] [-- --keep]`
 *
 * Runs every chaos case against real processes (service, endpoint daemon, managers, workers, Slurm) and
 * prints a table: case | completed | failed | lost | seconds, then what happened in each case. `--short`
 * runs 200 tasks per case (CI); with `--json` the last line is a JSON array of {case, completed, failed,
 * lost, ...figures}. Exits 1 when any task was lost or a case could not run as designed. The PostgreSQL
 * cases (replica-kill, postgres-restart) need root; without it they are skipped, and the table says so.
 *
 * `npm run chaos -- --only abuse [--json] [--rate N] [--baseline-s S] [--attack-s S] [--skip ATTACK] [--mallory-nice N] [--keep]` runs the abuse run
 * instead (abuse.ts): with --json its last line is one JSON object (abuse_service_peak_rss_mib, ...).
 */
import { CASES } from './cases.js';
import { runAbuse } from './abuse.js';
import { FULL_TASKS, SHORT_TASKS, runOptions, runCase, type CaseResult, type RunOptions } from './run-case.js';

function parseArgs(argv: string[]): { options: Omit<RunOptions, 'progress'>; json: boolean; only: string[] } {
  const short = argv.includes('--short');
  const only: string[] = [];
  let tasks = short ? SHORT_TASKS : FULL_TASKS;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--case') only.push(argv[++i] ?? '');
    else if (a === '--tasks') tasks = Number(argv[++i]);
    else if (!['--short', '--json', '--keep'].includes(a)) throw new Error(`unknown argument ${a} (known: --short --json --keep --case NAME --tasks N)`);
  }
  if (!Number.isInteger(tasks) || tasks < 1) throw new Error('--tasks: expected a whole number ≥ 1');
  const known = CASES.map((c) => c.name);
  for (const name of only) if (!known.includes(name)) throw new Error(`--case ${name}: no such case (known: ${known.join(', ')})`);
  return {
    options: { ...runOptions(short), tasks, keep: argv.includes('--keep') },
    json: argv.includes('--json'),
    only,
  };
}

/** The table and the notes under it. */
function report(results: CaseResult[]): string {
  const rows = [['case', 'completed', 'failed', 'lost', 'seconds', 'failures by type']];
  for (const r of results) {
    const types = Object.entries(r.failureTypes).map(([t, n]) => `${t} ${n}`).join(', ');
    const last = r.skipped ? 'SKIPPED (see below)' : r.error ? `ERROR (see below): ${r.error.slice(0, 60)}…` : types || '-';
    rows.push([r.case, String(r.completed), String(r.failed), String(r.lost), r.seconds.toFixed(1), last]);
  }
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => row[col].length)));
  const line = (row: string[]) => row.map((cell, col) => (col >= 1 && col <= 4 ? cell.padStart(widths[col]) : cell.padEnd(widths[col]))).join(' | ').trimEnd();
  const out = [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.slice(1).map(line), ''];
  for (const r of results) {
    out.push(`${r.case}: ${r.title} (${r.submitted} tasks${r.wrong ? `, ${r.wrong} with a wrong value` : ''})`);
    for (const n of r.notes) out.push(`  - ${n}`);
    if (Object.keys(r.figures).length) out.push(`  - figures: ${Object.entries(r.figures).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    if (r.error) out.push(`  - ERROR: ${r.error}`);
  }
  return out.join('\n');
}

/** `--only abuse`: the abuse run (abuse.ts). */
async function mainAbuse(argv: string[]): Promise<void> {
  const num = (flag: string, dflt: number): number => {
    const i = argv.indexOf(flag);
    if (i < 0) return dflt;
    const n = Number(argv[i + 1]);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag}: expected a number > 0`);
    return n;
  };
  const known = new Set(['--only', 'abuse', '--json', '--keep', '--rate', '--baseline-s', '--attack-s', '--grace-s', '--mallory-nice']);
  const skip: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--skip') skip.push(argv[++i] ?? '');
    else if (['--rate', '--baseline-s', '--attack-s', '--grace-s', '--mallory-nice'].includes(argv[i])) i++;
    else if (!known.has(argv[i])) throw new Error(`unknown argument ${argv[i]} for --only abuse (known: --json --keep --rate N --baseline-s S --attack-s S --grace-s S --skip ATTACK --mallory-nice 0-19)`);
  }
  const r = await runAbuse({
    rate: num('--rate', 1000),
    baselineS: num('--baseline-s', 20),
    attackS: num('--attack-s', 60),
    graceS: num('--grace-s', 120),
    keep: argv.includes('--keep'),
    skip,
    malloryNice: argv.includes('--mallory-nice') ? Math.min(19, Math.round(num('--mallory-nice', 0))) : 0,
    progress: (m) => process.stderr.write(`… [abuse] ${m}\n`),
  });
  const { notes, attacks, ...figures } = r;
  process.stdout.write(`abuse run: ${JSON.stringify(figures, null, 1)}\nattacks (status → count): ${JSON.stringify(attacks, null, 1)}\n${notes.map((n) => `  - ${n}`).join('\n')}\n`);
  if (argv.includes('--json')) process.stdout.write(JSON.stringify({ ...figures, attacks }) + '\n');
  if (r.error || r.abuse_honest_lost > 0) process.exitCode = 1;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const onlyAt = argv.indexOf('--only');
  if (onlyAt >= 0) {
    if (argv[onlyAt + 1] !== 'abuse') throw new Error(`--only: the one run known is "abuse" (got ${argv[onlyAt + 1] ?? 'nothing'})`);
    return mainAbuse(argv);
  }
  const { options, json, only } = parseArgs(process.argv.slice(2));
  const cases = only.length ? CASES.filter((c) => only.includes(c.name)) : CASES;
  const results: CaseResult[] = [];
  for (const c of cases) {
    results.push(await runCase(c, { ...runOptions(options.short), ...options }));
  }
  process.stdout.write(report(results) + '\n');
  if (json) {
    const rows = results.map((r) => ({ case: r.case, completed: r.completed, failed: r.failed, lost: r.lost, ...r.figures, ...(r.error ? { error: r.error } : {}), ...(r.skipped ? { skipped: r.skipped } : {}) }));
    process.stdout.write(JSON.stringify(rows) + '\n');
  }
  if (results.some((r) => r.lost > 0 || r.error || r.completed + r.failed !== r.submitted)) process.exitCode = 1;
}

main().catch((err: Error) => {
  process.stderr.write(`chaos: ${err.message}\n`);
  process.exitCode = 2;
});
