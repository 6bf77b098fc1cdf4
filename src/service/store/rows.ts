/**
 * Rows of either back end as the store's records: SqliteStore and PgStore read the same column names
 * (postgres.ts imports these through sqlite.ts, which re-exports them).
 */
import type { TaskEnvelope } from '../../protocol/messages.js';
import type { EndpointRecord, EndpointState, FunctionRecord, TaskRecord, TaskState, TaskSummary, User } from './types.js';
import type { TaskTimes } from './transitions.js';

type Row = Record<string, unknown>;

export function toEndpoint(r: Row): EndpointRecord {
  return {
    id: r.id as string,
    name: r.name as string,
    owner: r.owner as string,
    publicKey: r.public_key as string,
    state: r.state as EndpointState,
    lastSeen: r.last_seen === null || r.last_seen === undefined ? null : Number(r.last_seen),
    group: (r.group_id as string | null) ?? null,
    ports: r.ports ? (JSON.parse(r.ports as string) as EndpointRecord['ports']) : null,
    replica: (r.replica as string | null | undefined) ?? null,
    metadata: r.metadata ? (JSON.parse(r.metadata as string) as EndpointRecord['metadata']) : null,
    createdAt: Number(r.created_at),
  };
}

export function toTask(r: Row): TaskRecord {
  return {
    id: r.id as string,
    endpoint: r.endpoint as string,
    function: (r.function as string | null) ?? null,
    owner: r.owner as string,
    state: r.state as TaskState,
    failed: r.failed === null || r.failed === undefined ? null : Number(r.failed) === 1,
    result: (r.result as Buffer | null) ?? null,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

/** A row of id, endpoint, function, owner, state, failed, result_bytes, created_at, updated_at (built directly: long-polls read thousands). */
export function toTaskSummary(r: Row): TaskSummary {
  return {
    id: r.id as string,
    endpoint: r.endpoint as string,
    function: (r.function as string | null) ?? null,
    owner: r.owner as string,
    state: r.state as TaskState,
    failed: r.failed === null || r.failed === undefined ? null : Number(r.failed) === 1,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    resultBytes: Number(r.result_bytes),
  };
}

export function toTaskTimes(r: Row): TaskTimes {
  const n = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
  return {
    state: r.state as TaskState,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    deliveredAt: n(r.delivered_at),
    runningAt: n(r.running_at),
    ownerName: (r.owner_name as string | null) ?? '?',
  };
}

/**
 * A task taken for delivery carries its submitter's id (`u`) when that is not the endpoint's owner: the
 * endpoint's manager runs it only in that user's own workers, and the endpoint applies its sharing rules.
 */
export function withUser(t: TaskEnvelope, owner: string, endpointOwner: string | undefined): TaskEnvelope {
  if (owner !== endpointOwner) t.u = owner;
  return t;
}

export function toUser(r: Row | undefined): User | undefined {
  if (!r) return undefined;
  const user: User = { id: r.id as string, name: r.name as string, createdAt: Number(r.created_at) };
  if (r.expires_at !== undefined) user.tokenExpiresAt = r.expires_at === null ? null : Number(r.expires_at);
  return user;
}

export function toFunction(r: Row | undefined): FunctionRecord | undefined {
  return r && { id: r.id as string, owner: r.owner as string, name: r.name as string, source: r.source as string,
    group: (r.group_id as string | null) ?? null, createdAt: Number(r.created_at) };
}
