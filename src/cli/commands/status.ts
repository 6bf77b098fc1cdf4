/**
 * `funcx-endpoint status [NAME] [--json]`: the endpoint, its blocks, managers, queue and the strategy's last
 * decision, from the status file the daemon refreshes every few seconds.
 */
import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CliContext } from '../context.js';
import { DEFAULT_ENDPOINT } from '../../endpoint/daemon/home.js';
import { readLease, leaseIsLive } from '../../endpoint/daemon/lease.js';
import type { StatusFile } from '../../endpoint/daemon/daemon.js';
import type { EndedBlockView } from '../../endpoint/engine/blocks.js';
import { FuncxError } from '../../errors.js';
import { plainTable } from '../table.js';

function age(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '-';
  const s = Math.max(0, Math.round(seconds));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function registerStatusCommand(program: Command, ctx: CliContext): void {
  program
    .command('status [name]')
    .description('show an endpoint: state, blocks, managers, queue and the last strategy decision')
    .option('--json', 'print one JSON object')
    .option('--watch', 'redraw the tables in place every second until Ctrl-C')
    .action(async (nameArg: string | undefined, options: { json?: boolean; watch?: boolean }) => {
      const name = nameArg ?? DEFAULT_ENDPOINT;
      if (options.watch && options.json) throw new FuncxError('USAGE', '--watch and --json cannot be used together');
      if (options.watch) {
        statusLines(ctx, name, false); // an unknown endpoint fails now, not on every redraw
        return watch(() => statusLines(ctx, name, false));
      }
      for (const line of statusLines(ctx, name, Boolean(options.json))) ctx.out(line);
    });
}

/** Redraw every second in place (cursor home, clear below) until SIGINT; the cursor is restored on exit. */
async function watch(lines: () => string[]): Promise<void> {
  const write = (text: string) => process.stdout.write(text);
  const draw = () => {
    let text: string;
    try {
      text = lines().join('\n');
    } catch (err) {
      text = (err as Error).message;
    }
    write(`\x1b[H${text.replace(/\n/g, '\x1b[K\n')}\x1b[K\n\x1b[J${new Date().toISOString().slice(11, 19)}  (Ctrl-C to quit)\x1b[K`);
  };
  write('\x1b[?25l\x1b[2J');
  draw();
  const timer = setInterval(draw, 1000);
  // \`on\`, not \`once\`: a second SIGINT while the process winds down (a user's double Ctrl-C; \`script\` both
  // writes ^C to the terminal and signals its child) must not kill it by the default action, exit status 130.
  await new Promise<void>((resolve) => process.on('SIGINT', () => resolve()));
  clearInterval(timer);
  write('\x1b[?25h\n');
}

/** The status of endpoint `name` as lines: one JSON object, or the tables. */
function statusLines(ctx: CliContext, name: string, json: boolean): string[] {
  const lines: string[] = [];
  const out = (line: string) => lines.push(line);
  if (!ctx.home.isConfigured(name)) throw new FuncxError('NOT_CONFIGURED', `endpoint ${name} is not configured`);
  const info = ctx.home.readEndpointInfo(name);
  const lease = readLease(ctx.home.pidFile(name));
  const live = lease !== null && leaseIsLive(lease);
  const file = join(ctx.home.endpointDir(name), 'status.json');
  const status: StatusFile | null = live && existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as StatusFile) : null;
  const state = live ? 'Active' : info?.id ? 'Inactive' : 'Initialized';
  const e = status?.engine;
  const blocks = (e?.blocks ?? []).map((b) => ({
    id: b.id, jobId: b.jobId, state: b.state, nodes: b.nodes, ageS: b.ageS, walltimeLeftS: b.walltimeLeftS,
    managers: b.managers, busyWorkers: b.busyWorkers, idleWorkers: b.idleWorkers,
    phase: b.phase, reason: b.reason ?? null, cancelReason: b.cancelReason ?? null, detail: b.detail ?? null,
  }));
  if (json) {
    out(JSON.stringify({
      name, id: info?.id ?? null, status: state, host: lease?.host ?? null, pid: live ? lease?.pid : null,
      port: e?.port ?? null, backlog: e?.backlog ?? 0, pending: e?.pending ?? 0,
      managers: e?.managers ?? [], blocks, missing: e?.missing ?? [], submitHealth: e?.submitHealth ?? null,
      decision: e?.decision ?? null, scheduler_calls: e?.schedulerCalls ?? null, queue_wait: e?.queueWaits ?? [], endedBlocks: e?.endedBlocks ?? [], metricsPort: status?.metricsPort ?? null, ...(e?.mpiBlocks ? { mpiBlocks: e.mpiBlocks } : {}),
    }));
    return lines;
  }
  out(`Endpoint ${name}: ${state}${info?.id ? `  id ${info.id}` : ''}${live ? `  host ${lease!.host} pid ${lease!.pid}` : ''}`);
  if (!status || !e) {
    if (live) out('(no status yet: the daemon writes it every few seconds)');
    return lines;
  }
  out(`Interchange port ${e.port}; forwarder ${status.forwarderConnected ? 'connected' : 'DISCONNECTED'}; queue ${e.backlog} waiting, ${e.pending} held; status written ${age((Date.now() - status.writtenAt) / 1000)} ago`);
  out('');
  out('Blocks');
  out(blocks.length === 0 ? '  (none)' : plainTable(
    ['Block', 'Job ID', 'State', 'Nodes', 'Age', 'Walltime left', 'Managers', 'Busy', 'Idle', 'Why'],
    blocks.map((b) => [b.id, b.jobId ?? '-', b.phase && b.phase !== 'serving' ? `${b.state} (${b.phase})` : b.state, String(b.nodes), age(b.ageS), age(b.walltimeLeftS), String(b.managers), String(b.busyWorkers), String(b.idleWorkers), blockWhy(b)]),
  ).join('\n'));
  const waits = e.queueWaits ?? [];
  if (waits.length > 0) {
    out('');
    out('Queue wait (estimate per block shape, submitted → running)');
    out(plainTable(['Shape', 'Estimate', 'Starts seen', 'Last wait', 'Waiting now'],
      waits.map((w) => [w.shape, age(w.estimateS), String(w.samples), age(w.lastS), String(w.waiting)])).join('\n'));
  }
  const ended = (e.endedBlocks ?? []).slice(-5);
  if (ended.length > 0) {
    out('');
    out('Ended blocks (last 5)');
    out(ended.map((b: EndedBlockView) => `  block ${b.id} (job ${b.jobId ?? '-'}): ${b.state}${b.exitCode === undefined ? '' : `, exit code ${b.exitCode}`}${b.detail ? ` (${b.detail})` : ''}${b.cancelReason ? `; cancelled: ${b.cancelReason}` : ''}`).join('\n'));
  }
  out('');
  out('Managers');
  out(e.managers.length === 0 ? '  (none)' : plainTable(
    ['Manager', 'Block', 'Host', 'Node', 'Workers', 'In flight', 'Idle for'],
    e.managers.map((m) => [m.id.slice(0, 8), m.blockId || '-', m.hostname, m.node, String(m.workers), String(m.outstanding), age(m.idleS)]),
  ).join('\n'));
  // Per manager and user (as of each manager's last heartbeat): slots held, warm idle processes, tasks queued there.
  const pools = e.managers.flatMap((m) => (m.pools ?? []).map((p) => [m.id.slice(0, 8), p.user === '' ? '(owner)' : p.user, String(p.running), String(p.idle), String(p.queued)]));
  if (pools.length > 0) {
    out('');
    out('Worker pools');
    out(plainTable(['Manager', 'User', 'Running', 'Idle warm', 'Queued'], pools).join('\n'));
  }
  if (e.mpiBlocks) {
    out('');
    out('MPI nodes');
    const rows = e.mpiBlocks.flatMap((b) => b.nodes.map((n) => [b.blockId || '-', n.node, n.lost ? `LOST (${n.lost})${n.task ? `, ${n.task}` : ''}` : (n.task ?? 'free')]));
    out(rows.length === 0 ? '  (no MPI block yet)' : plainTable(['Block', 'Node', 'Task'], rows).join('\n'));
  }
  const h = e.submitHealth;
  if (h.consecutiveSubmitFailures > 0 || h.paused || h.missingCount > 0) {
    out('');
    out(`Submissions: ${h.consecutiveSubmitFailures} consecutive failure(s)${h.paused ? `, PAUSED: ${h.pausedReason}` : ''}${h.lastSubmitError ? `; last error: ${h.lastSubmitError}` : ''}; ${h.missingCount} block(s) ended without a manager`);
    for (const m of e.missing.slice(-3)) out(`  block ${m.blockId} (job ${m.jobId ?? '-'}, ${m.state}): ${m.tail.slice(-3).join(' | ') || '(no output)'}`);
  }
  if (e.decision) {
    out('');
    out(`Strategy (${age((Date.now() - e.decision.at) / 1000)} ago): ${e.decision.reason}`);
  }
  return lines;
}

/** The scheduler's reason a block is not running, and why we cancelled it, for the status table. */
function blockWhy(b: { state: string; reason: string | null; cancelReason: string | null; detail: string | null }): string {
  const parts: string[] = [];
  if (b.state !== 'running' && b.reason) parts.push(b.reason);
  if (b.cancelReason) parts.push(`cancelling: ${b.cancelReason}`);
  return parts.join('; ') || '-';
}
