/**
 * The six ways the suite breaks a running endpoint, each with the recovery an operator would do (often:
 * nothing, the system heals itself), then the two of a service on PostgreSQL (store-cases.ts). Every break
 * happens while tasks are in flight; `ctx.broke` checks it.
 */
import { HEARTBEAT, SHORT_FORWARDER_HEARTBEAT_ARGS, WORKERS_PER_NODE, localProfile, slurmProfile } from './profiles.js';
import { kill9, managersOf, procInfo, signal, until, workersOf, isAlive, type ProcInfo } from './procs.js';
import { untilValue } from '../helpers/wait.js';
import { run, slurmJobsNamed, type EndpointStatusJson } from './harness.js';
import { STORE_CASES } from './store-cases.js';
import type { ChaosCase, SimpleCase, CaseContext } from './run-case.js';

/** How long a case waits for its first results (blocks starting, on Slurm too). */
const FIRST_RESULTS_MS = 120_000;
/** The longest the service-kill case waits for the endpoint to notice the service is gone. */
const SERVICE_DOWN_MAX_MS = 60_000;

function pick<T>(items: T[], what: string): T {
  if (items.length === 0) throw new Error(`found no ${what} to break`);
  return items[Math.floor(Math.random() * items.length)];
}

/** Our managers that run at least one worker (so they hold tasks). */
function busyManagers(home: string): ProcInfo[] {
  const workers = workersOf(home);
  return managersOf(home).filter((m) => workers.some((w) => w.ppid === m.pid));
}

const workerKill: SimpleCase = {
  name: 'worker-kill',
  title: 'kill -9 of a worker process',
  profile: localProfile,
  async chaos(ctx: CaseContext) {
    const home = ctx.rig.funcxHome;
    const kills = ctx.short ? 2 : 3;
    for (let k = 1; k <= kills; k++) {
      await ctx.collector.waitFor(k / (kills + 2), FIRST_RESULTS_MS);
      const victim = pick(workersOf(home), 'worker');
      await kill9(victim.pid, 'worker');
      ctx.broke(`kill -9 worker pid ${victim.pid} (manager pid ${victim.ppid})`);
    }
    // Recovery is the manager's: it starts a new worker in the dead one's place.
    const managers = managersOf(home).length;
    await until('every manager to have its workers back', () => workersOf(home).length >= managers * WORKERS_PER_NODE, { timeoutMs: 15_000 }).catch(() => {});
    ctx.note(`after the kills: ${managersOf(home).length} managers, ${workersOf(home).length} workers`);
  },
};

const managerKill: SimpleCase = {
  name: 'manager-kill',
  title: 'kill -9 of a manager',
  profile: localProfile,
  async chaos(ctx: CaseContext) {
    const home = ctx.rig.funcxHome;
    await ctx.collector.waitFor(0.25, FIRST_RESULTS_MS);
    const victim = pick(busyManagers(home), 'busy manager');
    const orphans = workersOf(home).filter((w) => w.ppid === victim.pid);
    const before = new Set((await ctx.rig.status()).managers.map((m) => m.id));
    await kill9(victim.pid, 'manager');
    ctx.broke(`kill -9 manager pid ${victim.pid} (${orphans.length} workers)`);
    // Nothing to do by hand: the interchange notices the silence and retries the tasks; the strategy replaces the block.
    const gone = await until("the dead manager's workers to exit", () => orphans.every((w) => !isAlive(w.pid)), { timeoutMs: 10_000 }).then(() => true, () => false);
    ctx.note(gone ? "the dead manager's workers exited by themselves" : `workers of the dead manager still alive: ${orphans.filter((w) => isAlive(w.pid)).map((w) => w.pid).join(', ')}`);
    // The endpoint declares the silent manager lost after heartbeat_threshold: wait for it to drop from status.
    const t0 = Date.now();
    const s = await untilValue('the endpoint to declare the killed manager lost', () => ctx.rig.status(), {
      ok: (st) => [...before].some((id) => !st.managers.some((m) => m.id === id)),
      timeoutMs: (HEARTBEAT.threshold + 30) * 1000,
      everyMs: 250,
    });
    ctx.note(`declared lost ${((Date.now() - t0) / 1000).toFixed(1)} s after the kill: ${s.managers.length} managers registered, blocks ${s.blocks.map((b) => `${b.id}:${b.state}`).join(' ')}`);
  },
};

const slurmBlockCancel: SimpleCase = {
  name: 'slurm-block-scancel',
  title: 'a whole Slurm block cancelled with scancel',
  slurm: true,
  profile: slurmProfile,
  async chaos(ctx: CaseContext) {
    // As an operator would: find the blocks' job ids with `funcx-endpoint status`, then scancel one.
    let running: EndpointStatusJson['blocks'] = [];
    await until('two Slurm blocks running with their managers', async () => {
      running = (await ctx.rig.status()).blocks.filter((b) => b.jobId !== null && b.state === 'running' && b.managers >= b.nodes);
      return running.length >= 2;
    }, { timeoutMs: FIRST_RESULTS_MS, everyMs: 250 });
    const block = pick(running, 'running Slurm block');
    await ctx.collector.waitFor(0.2, FIRST_RESULTS_MS);
    const queued = await slurmJobsNamed(`funcx-${ctx.rig.name}-`);
    if (!queued.some((j) => j.id === block.jobId && j.state === 'R')) {
      throw new Error(`squeue does not show block ${block.id}'s job ${block.jobId} running (it shows ${JSON.stringify(queued)})`);
    }
    await run('scancel', [block.jobId!]);
    ctx.broke(`scancel ${block.jobId} (block ${block.id}: ${block.nodes} nodes, ${block.managers} managers)`);
    await until(`Slurm job ${block.jobId} to leave the running state`, async () => {
      const jobs = await slurmJobsNamed(`funcx-${ctx.rig.name}-`);
      return !jobs.some((j) => j.id === block.jobId && j.state === 'R');
    }, { timeoutMs: 60_000, everyMs: 250 });
    ctx.note(`job ${block.jobId} is no longer running; nothing else done by hand`);
  },
};

const daemonKill: SimpleCase = {
  name: 'daemon-kill',
  title: 'kill -9 of the endpoint daemon, then funcx-endpoint start again',
  profile: localProfile,
  async chaos(ctx: CaseContext) {
    await ctx.collector.waitFor(0.25, FIRST_RESULTS_MS);
    const pid = ctx.rig.daemonPid();
    await kill9(pid, 'endpoint daemon');
    ctx.broke(`kill -9 endpoint daemon pid ${pid}`);
    // The operator starts it again; the lease the dead daemon left must not block that.
    const t0 = Date.now();
    await ctx.rig.startEndpoint();
    ctx.note(`funcx-endpoint start ${ctx.rig.name} again: Active in ${((Date.now() - t0) / 1000).toFixed(1)} s (new pid ${ctx.rig.daemonPid()}, same id)`);
  },
};

const serviceKill: SimpleCase = {
  name: 'service-kill',
  title: 'kill -9 of the service, then funcx-service start on the same port',
  profile: localProfile,
  serviceArgs: SHORT_FORWARDER_HEARTBEAT_ARGS,
  async chaos(ctx: CaseContext) {
    const { rig } = ctx;
    await ctx.collector.waitFor(0.25, FIRST_RESULTS_MS);
    const pid = rig.servicePid();
    const port = rig.port;
    const failedRegistrations = () => rig.logTail(Number.MAX_SAFE_INTEGER).split('\n').filter((l) => l.includes('cannot register again')).length;
    const seenBefore = failedRegistrations();
    const down = Date.now();
    await kill9(pid, 'funcx-service');
    ctx.broke(`kill -9 funcx-service pid ${pid}`);
    // Down until the endpoint has declared the forwarder lost (the forwarder's heartbeat threshold) and
    // tried to register again while nobody answers; meanwhile it keeps working and keeps its results on disk.
    await until('the endpoint to try to register again with the dead service', () => failedRegistrations() > seenBefore, {
      timeoutMs: SERVICE_DOWN_MAX_MS,
      everyMs: 250,
    });
    const t0 = Date.now();
    await rig.startService(port, SHORT_FORWARDER_HEARTBEAT_ARGS);
    if (rig.port !== port) throw new Error(`the service came back on port ${rig.port}, not ${port}`);
    ctx.note(`${((t0 - down) / 1000).toFixed(1)} s later (the endpoint had tried to register again): funcx-service start --port ${port} (pid ${rig.servicePid()})`);
    // Nothing is done on the endpoint's side: it reconnects by itself.
    const client = rig.client();
    await until('the endpoint to reconnect to the restarted service', async () => {
      try {
        return (await client.getEndpoint(rig.endpointId)).state === 'Active';
      } catch {
        return false;
      }
    }, { timeoutMs: 60_000, everyMs: 200 });
    ctx.note(`the endpoint was Active again ${((Date.now() - t0) / 1000).toFixed(1)} s after the restart`);
  },
};

const managerStop: SimpleCase = {
  name: 'network-cut',
  title: 'manager cut off past the heartbeat threshold (SIGSTOP), then SIGCONT',
  profile: localProfile,
  async chaos(ctx: CaseContext) {
    const home = ctx.rig.funcxHome;
    await ctx.collector.waitFor(0.25, FIRST_RESULTS_MS);
    const victim = pick(busyManagers(home), 'busy manager');
    const before = new Set((await ctx.rig.status()).managers.map((m) => m.id));
    signal(victim.pid, 'SIGSTOP');
    try {
      await until(`manager pid ${victim.pid} to be stopped`, () => procInfo(victim.pid)?.state === 'T', { timeoutMs: 5000, everyMs: 20 });
      const t0 = Date.now();
      ctx.broke(`SIGSTOP manager pid ${victim.pid} until the endpoint declares it lost (threshold ${HEARTBEAT.threshold} s)`);
      // Cut off until the endpoint has given up on it (it drops from status), not for a guessed time.
      await until('the endpoint to declare the stopped manager lost', async () => {
        const st = await ctx.rig.status();
        return [...before].some((id) => !st.managers.some((m) => m.id === id));
      }, { timeoutMs: (HEARTBEAT.threshold + 30) * 1000, everyMs: 250 });
      ctx.note(`declared lost ${((Date.now() - t0) / 1000).toFixed(1)} s after SIGSTOP`);
    } finally {
      signal(victim.pid, 'SIGCONT');
    }
    // Declared lost while it was silent: when it speaks again it is told to go (or sees the silence itself).
    const exited = await until(`manager pid ${victim.pid} to exit after SIGCONT`, () => !isAlive(victim.pid), { timeoutMs: 15_000 }).then(() => true, () => false);
    ctx.note(exited ? `after SIGCONT, manager pid ${victim.pid} exited by itself` : `after SIGCONT, manager pid ${victim.pid} is still running`);
  },
};

/** Every case, in the order the suite runs them (the PostgreSQL ones last: store-cases.ts). */
export const CASES: readonly ChaosCase[] = [workerKill, managerKill, slurmBlockCancel, daemonKill, serviceKill, managerStop, ...STORE_CASES];
