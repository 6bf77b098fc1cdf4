/**
 * The service's forwarders, one per endpoint, in this replica: created on registration (or at start for
 * endpoints seen lately), re-created on a new key, closed when the endpoint moves to another replica, is
 * deleted, or has been gone a long time. Tasks queued for an endpoint served elsewhere are told on the bus.
 */
import type { CurveKeyPair } from '../../protocol/keys.js';
import type { Logger } from '../../logger.js';
import type { EndpointRecord, Store } from '../store/index.js';
import type { ReplicaBus } from '../replica-bus.js';
import type { ForwarderDirectory } from '../routes/context.js';
import type { ServiceOptions } from '../service-options.js';
import { Forwarder, type ForwarderOptions } from './forwarder.js';

export interface PoolOptions {
  store: Store;
  replicaId: string;
  /** Set once the bus is up (it needs the pool to deliver its events). */
  bus: ReplicaBus;
  maxResultBytes: number;
  keys: CurveKeyPair;
  options: ServiceOptions;
  onResults: NonNullable<ForwarderOptions['onResults']>;
  log: Logger;
}

/** The forwarders, one per endpoint, created on registration (or at start for recently seen endpoints). */
export class ForwarderPool implements ForwarderDirectory {
  private readonly forwarders = new Map<string, Forwarder>();
  private readonly creating = new Map<string, Promise<Forwarder>>();

  constructor(private readonly p: PoolOptions) {}

  get(endpointId: string): Forwarder | undefined {
    return this.forwarders.get(endpointId);
  }

  /** This replica's name (saved with the endpoints it serves). */
  get replicaId(): string {
    return this.p.replicaId;
  }

  async ensure(endpoint: Pick<EndpointRecord, 'id' | 'publicKey' | 'ports'>): Promise<Forwarder> {
    await this.creating.get(endpoint.id)?.catch(() => undefined);
    let forwarder = this.forwarders.get(endpoint.id);
    if (forwarder && forwarder.endpointPublicKey !== endpoint.publicKey) {
      // A new key: ZAP only vets new connections, and those made with the old key would stay served. Close
      // them all with the forwarder and open a new one (on the same ports when they are free again).
      this.p.log.info(`endpoint ${endpoint.id} has a new key: closing every connection made with the old one`);
      endpoint = { ...endpoint, ports: { ...forwarder.ports } };
      this.forwarders.delete(endpoint.id);
      await forwarder.close();
      forwarder = undefined;
    }
    if (!forwarder) {
      let creating = this.creating.get(endpoint.id);
      if (!creating) {
        const o = this.p.options;
        creating = Forwarder.create({
          endpointId: endpoint.id,
          store: this.p.store,
          keys: this.p.keys,
          endpointPublicKey: endpoint.publicKey,
          host: o.forwarderHost ?? o.host ?? '127.0.0.1',
          advertiseHost: o.forwarderAdvertiseHost,
          preferredPorts: endpoint.ports,
          portRange: o.forwarderPortRange,
          heartbeatPeriodMs: o.heartbeatPeriodMs,
          heartbeatThresholdMs: o.heartbeatThresholdMs,
          maxResultBytes: this.p.maxResultBytes,
          onResults: this.p.onResults,
          log: this.p.log.child(`forwarder ${endpoint.id.slice(0, 8)}`),
        })
          .then((f) => {
            this.forwarders.set(endpoint.id, f);
            // This replica serves the endpoint now: one that did before lets go of it.
            this.tellOthers(endpoint.id);
            return f;
          })
          .finally(() => this.creating.delete(endpoint.id));
        this.creating.set(endpoint.id, creating);
      }
      forwarder = await creating;
    }
    return forwarder;
  }

  /** Tasks were queued for the endpoint: wake its forwarder here, or the replica that serves it. */
  notify(endpointId: string): void {
    const forwarder = this.forwarders.get(endpointId);
    if (forwarder) forwarder.notify();
    else void this.p.bus.publishTasks([endpointId]).catch((err) => this.p.log.warn(`cannot tell the other replicas about new tasks: ${(err as Error).message}`));
  }

  /** Another replica queued tasks, or notifications may have been missed: forwarders here look at their queues. */
  wake(endpointIds?: readonly string[]): void {
    if (!endpointIds) for (const f of this.forwarders.values()) f.notify();
    else for (const id of endpointIds) this.forwarders.get(id)?.notify();
  }

  /** Another replica serves the endpoint now: close ours without recording a state (the other one does). */
  async release(endpointId: string): Promise<void> {
    await this.creating.get(endpointId)?.catch(() => undefined);
    const forwarder = this.forwarders.get(endpointId);
    if (!forwarder) return;
    this.forwarders.delete(endpointId);
    this.p.log.info(`endpoint ${endpointId} registered with another replica: closing its forwarder here`);
    await forwarder.close({ recordState: false });
  }

  forgetFunction(functionId: string): void {
    for (const f of this.forwarders.values()) f.forgetFunction(functionId);
  }

  async remove(endpointId: string): Promise<void> {
    await this.creating.get(endpointId)?.catch(() => undefined);
    const forwarder = this.forwarders.get(endpointId);
    this.forwarders.delete(endpointId);
    this.tellOthers(endpointId);
    await forwarder?.close();
  }

  /** Other replicas close their forwarder for this endpoint (it moved here, or was deleted). */
  private tellOthers(endpointId: string): void {
    void this.p.bus.publishClaim(endpointId).catch((err) => this.p.log.warn(`cannot tell the other replicas about endpoint ${endpointId}: ${(err as Error).message}`));
  }

  get size(): number {
    return this.forwarders.size;
  }

  /**
   * Close the forwarders of endpoints gone (not Active) for `idleMs`: their ports and ZeroMQ contexts come
   * back. The endpoint's record stays; its next registration opens a forwarder again (on the same ports
   * when they are free), and tasks queued meanwhile wait in the store. Returns the endpoints closed.
   */
  async reapIdle(idleMs: number, now = Date.now()): Promise<string[]> {
    const idle = [...this.forwarders].filter(([id, f]) => f.state !== 'Active' && now - f.quietSince >= idleMs && !this.creating.has(id));
    for (const [id, f] of idle) {
      if (this.forwarders.get(id) !== f) continue;
      this.forwarders.delete(id);
      this.p.log.info(`endpoint ${id} has been gone for ${Math.round((now - f.quietSince) / 1000)} s: closing its forwarder (it reopens at the next registration)`);
      await f.close();
    }
    return idle.map(([id]) => id);
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.creating.values()]);
    await Promise.all([...this.forwarders.values()].map((f) => f.close()));
    this.forwarders.clear();
  }
}
