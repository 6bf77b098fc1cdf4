/**
 * The endpoint's engine: the interchange, the blocks it owns through its provider, and the strategy that
 * sizes them. The daemon feeds it tasks and takes its results; `status` reads it.
 *
 * State (ENGINE_TRANSITIONS): created → starting → running → stopping → stopped; a stop may come at any point
 * (created and starting included): it waits for the start step under way, then undoes everything, so a
 * block the first strategy tick submitted (init_blocks) is cancelled too. stop() is idempotent.
 */
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Config } from '../../config/config.js';
import type { BlockRequest } from '../../../providers/provider.js';
import { shellQuote } from '../../../providers/script-values.js';
import { Interchange } from './interchange.js';
import { BlockTracker, type BlockShape, type BlockSnapshot, type EndedBlockView, type SubmitHealth, type MissingBlock, type QueueWaitView } from './blocks.js';
import { Strategy, type Decision } from './strategy.js';
import { blockRequest } from './manager-command.js';
import { managerAddress } from '../../config/engine-options.js';
import { loadOrCreateWorkerChannelKeys, type WorkerChannelKeys } from '../../protocol/keys.js';
import type { PoolView, ResultEnvelope, TaskEnvelope } from '../../protocol/messages.js';
import { FuncxError, IllegalStateError } from '../../errors.js';
import { Lifecycle, Once, type Transitions } from '../../lifecycle.js';
import { MpiAdmission } from '../mpi/mpi-admission.js';
import type { Logger } from '../../logger.js';

export type EngineState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

export const ENGINE_TRANSITIONS: Transitions<EngineState> = {
  created: ['starting', 'stopping'],
  starting: ['running', 'stopping'],
  running: ['stopping'],
  stopping: ['stopped'],
  stopped: [],
};

export interface EngineInit {
  config: Config;
  /** Endpoint name: goes into job names. */
  name: string;
  /** The profile's keys/ folder (0700). */
  keysDir: string;
  /** Global `endpoint_address`, used when the profile's engine sets no address. */
  endpointAddress?: string;
  log: Logger;
}

export interface ManagerView {
  id: string;
  blockId: string;
  hostname: string;
  node: string;
  workers: number;
  outstanding: number;
  idleS: number | null;
  /** Its worker pools per user ("" the owner), as of its last heartbeat. */
  pools: PoolView[];
}

export interface EngineStatus {
  state: EngineState;
  port: number;
  backlog: number;
  pending: number;
  managers: ManagerView[];
  blocks: Array<BlockSnapshot & { managers: number; busyWorkers: number; idleWorkers: number }>;
  missing: MissingBlock[];
  /** How the last blocks ended (completed, failed with exit code, timeout, node_fail, ...), newest last. */
  endedBlocks: EndedBlockView[];
  /** Scheduler commands the provider has run (status, submit, cancel, accounting); null when it does not count. */
  schedulerCalls: number | null;
  /** The queue-wait estimate per block shape (submitted → running). */
  queueWaits: QueueWaitView[];
  submitHealth: SubmitHealth;
  decision: Decision | null;
  /** Engine mode "mpi": per block, each node and the task running on it (null: free). */
  mpiBlocks?: Array<{ blockId: string; nodes: Array<{ node: string; task: string | null; lost?: string }> }>;
}

export class Engine {
  readonly life: Lifecycle<EngineState>;
  private starting: Promise<void> | undefined;
  private readonly stopping = new Once<TaskEnvelope[]>();
  readonly interchange: Interchange;
  readonly tracker: BlockTracker;
  readonly strategy: Strategy;
  private readonly keys: WorkerChannelKeys;
  private managerAddresses: string[] = [];
  private managerPort = 0;
  private keyFileOnChannel = '';
  /** Engine mode "mpi" only: reads resource specifications as tasks arrive. */
  readonly mpi?: MpiAdmission;
  private resultHandler: (results: ResultEnvelope[]) => void = () => {};

  constructor(private readonly init: EngineInit) {
    const { config, log } = init;
    this.life = new Lifecycle<EngineState>('engine', 'created', ENGINE_TRANSITIONS, { log });
    this.keys = loadOrCreateWorkerChannelKeys(init.keysDir);
    const address = managerAddress(config.engine, init.endpointAddress);
    // Managers dial `address`; a host name cannot be bound, so listen on every interface then.
    const remote = config.provider.channel.isRemote;
    const bindAddress = remote ? '127.0.0.1' : isIP(address) ? address : '0.0.0.0';
    this.managerAddresses = [address, ...config.engine.extraAddresses];
    const strategyOptions = config.strategy;
    if (config.engine.mode === 'mpi') {
      // The launcher was checked by the config layer (one manager per block).
      this.mpi = new MpiAdmission(strategyOptions.nodes.max);
    }
    this.interchange = new Interchange({
      keys: this.keys,
      address: bindAddress,
      port: config.engine.port,
      heartbeatPeriodMs: config.engine.heartbeatPeriodMs,
      heartbeatThresholdMs: config.engine.heartbeatThresholdMs,
      maxRetries: config.engine.maxRetries,
      walltimeMarginMs: strategyOptions.walltimeMarginMs,
      allowedFunctions: config.allowedFunctions,
      othersRunAnyFunction: config.othersRunAnyFunction,
      log: log.child('interchange'),
    });
    const blockLog = log.child('blocks');
    this.tracker = new BlockTracker({
      provider: config.provider,
      makeRequest: (blockId, shape) => this.blockRequest(blockId, shape),
      maxBlocks: strategyOptions.maxBlocks,
      log: (level, message) => blockLog[level](message),
    });
    const strategyLog = log.child('strategy');
    this.strategy = new Strategy({
      tracker: this.tracker,
      engine: this.mpi ? this.mpi.nodeView(this.interchange) : this.interchange,
      options: strategyOptions,
      estimateMs: () => this.interchange.typicalEstimateMs(),
      log: (level, message) => strategyLog[level](message),
    });
    this.interchange.on('manager-registered', (m) => this.tracker.noteManagerRegistered(m.blockId));
    this.tracker.onBlockEnded = (blockId, state) => this.interchange.forgetBlock(blockId, state);
  }

  get state(): EngineState {
    return this.life.state;
  }

  /**
   * Start the interchange, make it reachable to managers, and start the strategy (whose first tick submits
   * init_blocks). Rejects with STOPPED when stop() came first.
   */
  start(): Promise<void> {
    this.life.to('starting');
    this.starting = this.startSteps();
    return this.starting;
  }

  /** Throw when a stop came while starting: the rest of the start is abandoned (stop() undoes the rest). */
  private checkStarting(): void {
    if (!this.life.is('starting')) throw new FuncxError('STOPPED', 'the engine was stopped while starting');
  }

  private async startSteps(): Promise<void> {
    const channel = this.init.config.provider.channel;
    await channel.connect?.();
    this.checkStarting();
    const port = await this.interchange.start();
    this.checkStarting();
    this.managerPort = port;
    if (channel.isRemote) {
      // Managers on the cluster cannot reach us: ride back through the channel (reverse forward).
      const exposed = await channel.exposePort('127.0.0.1', port);
      this.managerAddresses = [exposed.host];
      this.managerPort = exposed.port;
    }
    // Managers read their keys from a 0600 file beside the submit scripts (never from the command line).
    this.keyFileOnChannel = channel.isRemote ? `${channel.scriptDir}/manager-key.json` : join(this.init.keysDir, 'manager-key.json');
    const keyFile = JSON.stringify({
      serverPublicKey: this.keys.interchange.publicKey,
      publicKey: this.keys.manager.publicKey,
      secretKey: this.keys.manager.secretKey,
    });
    if (channel.isRemote) await channel.run(`mkdir -p ${shellQuote(channel.scriptDir)} && chmod 700 ${shellQuote(channel.scriptDir)}`);
    await channel.writeFile(this.keyFileOnChannel, keyFile + '\n', 0o600);
    this.checkStarting();
    this.life.to('running');
    this.strategy.start();
  }

  /** What the provider submits for a block (the manager command comes from the pure builder). */
  blockRequest(blockId: string, shape: BlockShape): BlockRequest {
    const at = { addresses: this.managerAddresses, port: this.managerPort, keyFile: this.keyFileOnChannel };
    return blockRequest(this.init.config.engine, at, this.init.name, blockId, shape);
  }

  /** Hand tasks to the interchange; results come through `onResults`. */
  submitMany(tasks: TaskEnvelope[]): void {
    if (this.mpi) {
      const { accepted, refused } = this.mpi.admit(tasks);
      if (refused.length) this.resultHandler(refused);
      tasks = accepted;
    }
    this.interchange.submitMany(tasks);
    // Work arrived: decide now rather than at the next period (first block within a second of a burst).
    this.strategy.nudge();
  }

  submit(task: TaskEnvelope): Promise<ResultEnvelope> {
    if (this.mpi) {
      const { refused } = this.mpi.admit([task]);
      if (refused.length) return Promise.resolve(refused[0]);
      const mpi = this.mpi;
      const result = this.interchange.submit(task).then((r) => (mpi.finished([r]), r));
      this.strategy.nudge();
      return result;
    }
    const result = this.interchange.submit(task);
    this.strategy.nudge();
    return result;
  }

  set onResults(handler: (results: ResultEnvelope[]) => void) {
    this.resultHandler = handler;
    const mpi = this.mpi;
    this.interchange.onResults = mpi ? (results) => (mpi.finished(results), handler(results)) : handler;
  }

  status(): EngineStatus {
    const now = Date.now();
    const loads = this.interchange.loadByBlock();
    const managers = this.interchange.registry.all().map((m) => ({
      id: m.id,
      blockId: m.blockId,
      hostname: m.hostname,
      node: m.node,
      workers: m.workers,
      outstanding: m.outstanding,
      idleS: m.idleSince === null ? null : Math.round((now - m.idleSince) / 1000),
      pools: m.pools ?? [],
    }));
    return {
      state: this.state,
      port: this.interchange.port,
      backlog: this.interchange.backlog(),
      pending: this.interchange.pending,
      managers,
      blocks: this.tracker.snapshot().map((b) => {
        const load = loads.get(b.id);
        return { ...b, managers: load?.managers ?? 0, busyWorkers: load?.busyWorkers ?? 0, idleWorkers: load ? load.workers - load.busyWorkers : 0 };
      }),
      missing: [...this.tracker.missing()],
      endedBlocks: this.tracker.endedSnapshot(),
      schedulerCalls: (this.init.config.provider as { schedulerCalls?: number }).schedulerCalls ?? null,
      queueWaits: this.tracker.queueWaitSnapshot(),
      submitHealth: this.tracker.submitHealth(),
      decision: this.strategy.lastDecision,
      ...(this.mpi
        ? { mpiBlocks: this.interchange.registry.all().filter((m) => m.mpiNodes).map((m) => ({ blockId: m.blockId, nodes: m.mpiNodes! })) }
        : {}),
    };
  }

  /**
   * Stop: no new blocks, in-flight tasks get up to graceMs, managers are told to go, every block is
   * cancelled. Returns the tasks that did not finish (the forwarder redelivers them). Safe to call again.
   */
  stop(options: { graceMs?: number } = {}): Promise<TaskEnvelope[]> {
    return this.stopping.run(async () => {
      this.life.to('stopping');
      // Let the start step under way settle (it sees `stopping` and gives up), then undo what it made.
      await this.starting?.catch(() => {});
      this.strategy.stop();
      // A tick under way may be submitting a block (the first one: init_blocks): wait for its job id.
      await this.strategy.idle();
      let unfinished: TaskEnvelope[] = [];
      try {
        unfinished = await this.interchange.stop({ graceMs: options.graceMs });
      } finally {
        const ids = this.tracker.blocks().map((b) => b.blockId);
        await this.tracker.cancel(ids).catch((err: Error) => this.init.log.error(`cancelling blocks failed: ${err.message}`));
        await this.init.config.provider.close().catch(() => {});
        await this.init.config.provider.channel.close().catch(() => {});
        this.life.to('stopped');
      }
      return unfinished;
    });
  }
}
