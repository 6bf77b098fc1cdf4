/**
 * The endpoint's engine: the interchange, the blocks it owns through its provider, and the strategy that
 * sizes them. The daemon feeds it tasks and takes its results; `status` reads it.
 *
 * State: created → running → stopping → stopped.
 */
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Config } from '../../config/config.js';
import type { BlockRequest } from '../../../providers/provider.js';
import { shellQuote } from '../../../providers/script-values.js';
import { Interchange } from './interchange.js';
import { BlockTracker, type BlockShape, type BlockSnapshot, type SubmitHealth, type MissingBlock } from './blocks.js';
import { Strategy, type Decision } from './strategy.js';
import { blockRequest } from './manager-command.js';
import { managerAddress } from '../../config/engine-options.js';
import { loadOrCreateWorkerChannelKeys, type WorkerChannelKeys } from '../../protocol/keys.js';
import type { ResultEnvelope, TaskEnvelope } from '../../protocol/messages.js';
import { IllegalStateError } from '../../errors.js';
import type { Logger } from '../../logger.js';

export type EngineState = 'created' | 'running' | 'stopping' | 'stopped';

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
}

export interface EngineStatus {
  state: EngineState;
  port: number;
  backlog: number;
  pending: number;
  managers: ManagerView[];
  blocks: Array<BlockSnapshot & { managers: number; busyWorkers: number; idleWorkers: number }>;
  missing: MissingBlock[];
  submitHealth: SubmitHealth;
  decision: Decision | null;
}

export class Engine {
  state: EngineState = 'created';
  readonly interchange: Interchange;
  readonly tracker: BlockTracker;
  readonly strategy: Strategy;
  private readonly keys: WorkerChannelKeys;
  private managerAddresses: string[] = [];
  private managerPort = 0;
  private keyFileOnChannel = '';

  constructor(private readonly init: EngineInit) {
    const { config, log } = init;
    this.keys = loadOrCreateWorkerChannelKeys(init.keysDir);
    const address = managerAddress(config.engine, init.endpointAddress);
    // Managers dial `address`; a host name cannot be bound, so listen on every interface then.
    const remote = config.provider.channel.isRemote;
    const bindAddress = remote ? '127.0.0.1' : isIP(address) ? address : '0.0.0.0';
    this.managerAddresses = [address, ...config.engine.extraAddresses];
    const strategyOptions = config.strategy;
    this.interchange = new Interchange({
      keys: this.keys,
      address: bindAddress,
      port: config.engine.port,
      heartbeatPeriodMs: config.engine.heartbeatPeriodMs,
      heartbeatThresholdMs: config.engine.heartbeatThresholdMs,
      maxRetries: config.engine.maxRetries,
      walltimeMarginMs: strategyOptions.walltimeMarginMs,
      allowedFunctions: config.allowedFunctions,
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
      engine: this.interchange,
      options: strategyOptions,
      estimateMs: () => this.interchange.typicalEstimateMs(),
      log: (level, message) => strategyLog[level](message),
    });
    this.interchange.on('manager-registered', (m) => this.tracker.noteManagerRegistered(m.blockId));
    this.tracker.onBlockEnded = (blockId, state) => this.interchange.forgetBlock(blockId, state);
  }

  /** Start the interchange, make it reachable to managers, and start the strategy. */
  async start(): Promise<void> {
    if (this.state !== 'created') throw new IllegalStateError(`engine cannot start from state ${this.state}`);
    const channel = this.init.config.provider.channel;
    await channel.connect?.();
    const port = await this.interchange.start();
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
    this.state = 'running';
    this.strategy.start();
  }

  /** What the provider submits for a block (the manager command comes from the pure builder). */
  blockRequest(blockId: string, shape: BlockShape): BlockRequest {
    const at = { addresses: this.managerAddresses, port: this.managerPort, keyFile: this.keyFileOnChannel };
    return blockRequest(this.init.config.engine, at, this.init.name, blockId, shape);
  }

  /** Hand tasks to the interchange; results come through `onResults`. */
  submitMany(tasks: TaskEnvelope[]): void {
    this.interchange.submitMany(tasks);
    // Work arrived: decide now rather than at the next period (first block within a second of a burst).
    this.strategy.nudge();
  }

  submit(task: TaskEnvelope): Promise<ResultEnvelope> {
    const result = this.interchange.submit(task);
    this.strategy.nudge();
    return result;
  }

  set onResults(handler: (results: ResultEnvelope[]) => void) {
    this.interchange.onResults = handler;
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
      submitHealth: this.tracker.submitHealth(),
      decision: this.strategy.lastDecision,
    };
  }

  /**
   * Stop: no new blocks, in-flight tasks get up to graceMs, managers are told to go, every block is
   * cancelled. Returns the tasks that did not finish (the forwarder redelivers them). Safe to call again.
   */
  async stop(options: { graceMs?: number } = {}): Promise<TaskEnvelope[]> {
    if (this.state === 'stopping' || this.state === 'stopped') return [];
    this.state = 'stopping';
    this.strategy.stop();
    let unfinished: TaskEnvelope[] = [];
    try {
      unfinished = await this.interchange.stop({ graceMs: options.graceMs });
    } finally {
      const ids = this.tracker.blocks().map((b) => b.blockId);
      await this.tracker.cancel(ids).catch((err: Error) => this.init.log.error(`cancelling blocks failed: ${err.message}`));
      await this.init.config.provider.close().catch(() => {});
      await this.init.config.provider.channel.close().catch(() => {});
      this.state = 'stopped';
    }
    return unfinished;
  }
}
