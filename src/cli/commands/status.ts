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
    .action(async (nameArg: string | undefined, options: { json?: boolean }) => {
      const name = nameArg ?? DEFAULT_ENDPOINT;
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
      if (options.json) {
        ctx.out(JSON.stringify({
          name, id: info?.id ?? null, status: state, host: lease?.host ?? null, pid: live ? lease?.pid : null,
          port: e?.port ?? null, backlog: e?.backlog ?? 0, pending: e?.pending ?? 0,
          managers: e?.managers ?? [], blocks, missing: e?.missing ?? [], submitHealth: e?.submitHealth ?? null,
          decision: e?.decision ?? null,
          scheduler_calls: e?.schedulerCalls ?? null, endedBlocks: e?.endedBlocks ?? [],
        }));
        return;
      }
      ctx.out(`Endpoint ${name}: ${state}${info?.id ? `  id ${info.id}` : ''}${live ? `  host ${lease!.host} pid ${lease!.pid}` : ''}`);
      if (!status || !e) {
        if (live) ctx.out('(no status yet: the daemon writes it every few seconds)');
        return;
      }
      ctx.out(`Interchange port ${e.port}; forwarder ${status.forwarderConnected ? 'connected' : 'DISCONNECTED'}; queue ${e.backlog} waiting, ${e.pending} held; status written ${age((Date.now() - status.writtenAt) / 1000)} ago`);
      ctx.out('');
      ctx.out('Blocks');
      ctx.out(blocks.length === 0 ? '  (none)' : plainTable(
        ['Block', 'Job ID', 'State', 'Nodes', 'Age', 'Walltime left', 'Managers', 'Busy', 'Idle', 'Why'],
        blocks.map((b) => [b.id, b.jobId ?? '-', b.phase && b.phase !== 'serving' ? `${b.state} (${b.phase})` : b.state, String(b.nodes), age(b.ageS), age(b.walltimeLeftS), String(b.managers), String(b.busyWorkers), String(b.idleWorkers), blockWhy(b)]),
      ).join('\n'));
      const ended = (e.endedBlocks ?? []).slice(-5);
      if (ended.length > 0) {
        ctx.out('');
        ctx.out('Ended blocks (last 5)');
        ctx.out(ended.map((b: EndedBlockView) => `  block ${b.id} (job ${b.jobId ?? '-'}): ${b.state}${b.exitCode === undefined ? '' : `, exit code ${b.exitCode}`}${b.detail ? ` (${b.detail})` : ''}${b.cancelReason ? `; cancelled: ${b.cancelReason}` : ''}`).join('\n'));
      }
      ctx.out('');
      ctx.out('Managers');
      ctx.out(e.managers.length === 0 ? '  (none)' : plainTable(
        ['Manager', 'Block', 'Host', 'Node', 'Workers', 'In flight', 'Idle for'],
        e.managers.map((m) => [m.id.slice(0, 8), m.blockId || '-', m.hostname, m.node, String(m.workers), String(m.outstanding), age(m.idleS)]),
      ).join('\n'));
      const h = e.submitHealth;
      if (h.consecutiveSubmitFailures > 0 || h.paused || h.missingCount > 0) {
        ctx.out('');
        ctx.out(`Submissions: ${h.consecutiveSubmitFailures} consecutive failure(s)${h.paused ? `, PAUSED: ${h.pausedReason}` : ''}${h.lastSubmitError ? `; last error: ${h.lastSubmitError}` : ''}; ${h.missingCount} block(s) ended without a manager`);
        for (const m of e.missing.slice(-3)) ctx.out(`  block ${m.blockId} (job ${m.jobId ?? '-'}, ${m.state}): ${m.tail.slice(-3).join(' | ') || '(no output)'}`);
      }
      if (e.decision) {
        ctx.out('');
        ctx.out(`Strategy (${age((Date.now() - e.decision.at) / 1000)} ago): ${e.decision.reason}`);
      }
    });
}

/** The scheduler's reason a block is not running, and why we cancelled it, for the status table. */
function blockWhy(b: { state: string; reason: string | null; cancelReason: string | null; detail: string | null }): string {
  const parts: string[] = [];
  if (b.state !== 'running' && b.reason) parts.push(b.reason);
  if (b.cancelReason) parts.push(`cancelling: ${b.cancelReason}`);
  return parts.join('; ') || '-';
}
