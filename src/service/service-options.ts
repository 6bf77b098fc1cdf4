/**
 * What `startService` takes (`funcx-service start`'s flags): sizes and counts (limits.ts), quotas, where the
 * state, keys and sockets live, and the service's timings.
 */
import type { Logger } from '../logger.js';
import type { ServiceLimits, ServiceQuotas } from './limits.js';

export interface ServiceOptions extends Partial<ServiceLimits> {
  /** State folder (FUNCX_SERVICE_HOME): service.db (unless `database` says otherwise) and keys/. */
  home: string;
  /** Serve HTTPS with this certificate and key (PEM files). */
  tls?: { cert: string; key: string };
  /** Per-user quotas; absent ones keep their defaults (limits.ts). */
  quotas?: Partial<ServiceQuotas>;
  /**
   * The forwarder's CURVE key pair, shared by every replica behind one address (endpoints pin it); 0600.
   * @default HOME/keys/forwarder.json, created on first start
   */
  forwarderKeyFile?: string;
  /** Where the state lives: a SQLite file path or a postgres:// URL. @default HOME/service.db */
  database?: string;
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 lets the OS choose. @default 8080 (SERVICE_DEFAULTS, limits.ts, as every default below) */
  port?: number;
  /** Where forwarders bind. @default host */
  forwarderHost?: string;
  /** Host endpoints are told to dial. @default forwarderHost */
  forwarderAdvertiseHost?: string;
  /** Inclusive port range for forwarder sockets; OS-chosen ports when absent. */
  forwarderPortRange?: readonly [number, number];
  /** @default 2000 */
  heartbeatPeriodMs?: number;
  /** @default 10000 */
  heartbeatThresholdMs?: number;
  /** How often the tokens of open long-polls are checked again (a revoked one cuts them). @default 1000 */
  tokenRecheckMs?: number;
  /** Longest long-poll, seconds. @default 60 */
  maxWaitSeconds?: number;
  /**
   * This replica's name, kept in the database next to the endpoints it serves. Stable across restarts so a
   * restarted replica takes back its endpoints. @default a UUID kept in HOME/replica-id
   */
  replicaId?: string;
  /** A forwarder closes once its endpoint has been gone (not Active) this long; 0 keeps them open. @default 1 hour */
  forwarderIdleCloseMs?: number;
  /** Forwarders are re-created at start for endpoints seen within this many ms. @default 7 days */
  restoreWithinMs?: number;
  log?: Logger;
}
