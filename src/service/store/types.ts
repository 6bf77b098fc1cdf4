/**
 * What the service keeps, and the `Store` interface every back end (SQLite, PostgreSQL) implements.
 *
 * Every method returns a Promise, so the service never depends on a back end being synchronous. Hot paths
 * (insertTasks, takeQueued, storeResults, markRunning) take batches and run one transaction per call.
 */
import type { ResultEnvelope, TaskEnvelope } from '../../protocol/messages.js';
import type { ForwarderChannel } from '../../protocol/forwarder-messages.js';
import type { EndpointState, TaskState } from '../../protocol/http.js';

/** received → waiting-for-endpoint → waiting-for-nodes → running → success | failed (the HTTP contract's union). */
export type { EndpointState, TaskState };

export type User = {
  id: string;
  name: string;
  createdAt: number;
  /** Set by `userByToken`: when the token used expires (a named token with an expiry), else null. */
  tokenExpiresAt?: number | null;
};
export type Group = { id: string; name: string; owner: string };

export type { EndpointMetadata, EndpointSharing } from '../../protocol/http.js';
import type { EndpointMetadata } from '../../protocol/http.js';

export interface EndpointRecord {
  id: string;
  name: string;
  owner: string;
  publicKey: string;
  state: EndpointState;
  /** Epoch ms of the last message from the endpoint, or null if never connected. */
  lastSeen: number | null;
  /** Group whose members may also send tasks here, or null (owner only). */
  group: string | null;
  /** The forwarder's ports last time it ran (re-bound after a service restart when free). */
  ports: Record<ForwarderChannel, number> | null;
  /** The service replica whose forwarder serves it (the one it last registered with), or null. */
  replica: string | null;
  /** What the endpoint said of its owner at registration (global options username, email), or null. */
  metadata: EndpointMetadata | null;
  createdAt: number;
}

export interface FunctionRecord {
  id: string;
  owner: string;
  name: string;
  source: string;
  group: string | null;
  createdAt: number;
}

export interface TaskRecord {
  id: string;
  endpoint: string;
  function: string | null;
  owner: string;
  state: TaskState;
  /** null until finished. */
  failed: boolean | null;
  /** The opaque result payload (an encoded Outcome), null until finished. */
  result: Buffer | null;
  createdAt: number;
  updatedAt: number;
}

/** A task without its result payload, and the result's size (what a results page is planned from). */
export type TaskSummary = Omit<TaskRecord, 'result'> & { resultBytes: number };

export type Transition = { state: TaskState; actor: string; at: number };
export type NewTask = { id: string; endpoint: string; function: string | null; owner: string; payload: Uint8Array };

/** What storing a batch of results did. */
export interface StoredResults {
  /** Task ids whose result was stored now. */
  stored: string[];
  /** Results for tasks that were already finished (dropped). */
  duplicates: number;
  /** Results naming tasks that are not this endpoint's (dropped). */
  unknown: number;
  /** The stored tasks' updated_at (one time for the whole batch). */
  at?: number;
}

/**
 * The quotas a store checks in the same transaction as the write they limit. `invitations` counts the
 * pending invitations to the groups a user owns (only an owner invites); `inbox` the pending invitations
 * to the user; `functionBytes` the UTF-8 bytes of the sources of the user's functions (kept in user_usage by
 * triggers, migration 10).
 */
export type QuotaName = 'tasks' | 'functions' | 'endpoints' | 'groups' | 'invitations' | 'inbox' | 'functionBytes';

/**
 * The limits an invitation is checked against: the sender's `invitations`, the invited user's `inbox`, and
 * `perSender`, the pending invitations one group owner may hold in one inbox (refused as quota `inbox`).
 */
export type InvitationQuotas = { invitations: number; inbox: number; perSender?: number };

/** Every per-user quota: the counted ones and the stored result bytes (checked at submission). */
export type QuotaKey = QuotaName | 'resultBytes';

/** A user's own quotas where they differ from the service's (absent: the service's). */
export type QuotaOverrides = Partial<Record<QuotaKey, number>>;

/** What a user holds now, per quota. */
export type Usage = Record<QuotaKey, number>;

/** A named API token of a user (the token itself is shown once, at creation; only its hash is kept). */
export interface ApiToken {
  id: string;
  userId: string;
  name: string;
  createdAt: number;
  /** Epoch ms after which it is refused, or null (never). */
  expiresAt: number | null;
}

/** A write refused because it would take the owner over a quota; nothing of it was written. */
export class QuotaExceededError extends Error {
  constructor(
    readonly quota: QuotaKey,
    readonly used: number,
    readonly limit: number,
    readonly adding: number,
  ) {
    super(`quota "${quota}" exceeded: ${used} in use, ${adding} more asked, the limit is ${limit}`);
    this.name = 'QuotaExceededError';
  }
}

/**
 * What a task submission is checked against, read at once (Store.submissionContext): the submitter's quota
 * overrides and stored result bytes, the endpoints and functions the submission names (an id that is no
 * record is absent), and which groups of theirs the submitter belongs to (owns or is a member of).
 */
export interface SubmissionContext {
  overrides: QuotaOverrides;
  resultBytes: number;
  endpoints: Map<string, EndpointRecord>;
  functions: Map<string, FunctionRecord>;
  /** Of the groups the named endpoints and functions are shared with, those the submitter is in (at least those of records the submitter does not own). */
  groups: Set<string>;
}

/** The service's state. Implementations: SqliteStore (sqlite.ts), PgStore (postgres.ts). */
export interface Store {
  /** 'sqlite' or 'postgres', for logs and tests. */
  readonly kind: StoreKind;
  /** Close connections. Safe to call twice; every caller awaits the same promise. */
  close(): Promise<void>;

  // users
  /** Create a user; the returned token is the only copy (only its SHA-256 hash is stored). */
  createUser(name: string): Promise<{ user: User; token: string }>;
  /** The enabled user holding this token. */
  userByToken(token: string): Promise<User | undefined>;
  /** Give the user a new token (returned, the only copy); the old one stops working. */
  rotateToken(userId: string): Promise<string>;
  /** A disabled user's token is refused. */
  setUserDisabled(userId: string, disabled: boolean): Promise<void>;
  /**
   * Remove a user and what is theirs: endpoints (their unfinished tasks fail), functions, groups (what was
   * shared with them is no longer shared), memberships, tasks. Returns the ids of the removed endpoints.
   */
  removeUser(userId: string): Promise<{ endpoints: string[]; failedTasks: string[] }>;
  userByName(name: string): Promise<User | undefined>;
  userById(id: string): Promise<User | undefined>;

  // groups
  /** With `maxPerOwner`, throws QuotaExceededError (nothing written) when the owner has that many groups already. */
  createGroup(name: string, owner: string, maxPerOwner?: number): Promise<Group>;
  /** A group by its id or its name. */
  group(ref: string): Promise<Group | undefined>;
  addGroupMember(groupId: string, userId: string): Promise<void>;
  /**
   * Invite a user; they become a member with acceptInvitation. Inviting a member or an invited user again
   * does nothing. With `quotas`, throws QuotaExceededError (nothing written) when the group's owner has
   * `invitations` pending already (checked even when nothing would be written, and for `userId` null: a
   * name that is no user, so that the answer does not tell whether it is one), or when a new invitation
   * would find `inbox` pending in the user's inbox.
   */
  inviteToGroup(groupId: string, userId: string | null, quotas?: InvitationQuotas): Promise<void>;
  /** Groups the user was invited to and has not answered. */
  invitationsOf(userId: string): Promise<Group[]>;
  /** Turn the invitation into a membership; false when there is no such invitation. */
  acceptInvitation(groupId: string, userId: string): Promise<boolean>;
  /** Delete the invitation (declined by the user, or withdrawn by the group's owner); false when there was none. */
  declineInvitation(groupId: string, userId: string): Promise<boolean>;
  /** Delete the invitations sent before `createdBefore` (ms since the epoch): they expired unanswered. */
  expireInvitations(createdBefore: number): Promise<number>;
  /** False when the user was not a member. */
  removeGroupMember(groupId: string, userId: string): Promise<boolean>;
  /** Delete a group: its members leave, what was shared with it is no longer shared. */
  deleteGroup(groupId: string): Promise<void>;
  /** The owner of a group counts as a member. */
  isGroupMember(groupId: string, userId: string): Promise<boolean>;
  groupsOf(userId: string): Promise<Array<Group & { members: string[] }>>;

  // endpoints
  endpoint(id: string): Promise<EndpointRecord | undefined>;
  /**
   * Create the endpoint, or update name, key and group of an existing one (ownership is checked by the
   * caller); `replica`, when given, becomes the replica that serves it. A new endpoint counts against
   * `maxPerOwner`.
   */
  saveEndpoint(e: { id: string; name: string; owner: string; publicKey: string; group: string | null; replica?: string | null }, maxPerOwner?: number): Promise<EndpointRecord>;
  /**
   * Remove an endpoint; its unfinished tasks fail with EndpointDeleted (their ids are returned). Returns
   * undefined when there is no such endpoint.
   */
  deleteEndpoint(id: string): Promise<string[] | undefined>;
  setEndpointPorts(id: string, ports: Record<ForwarderChannel, number>): Promise<void>;
  setEndpointMetadata(id: string, metadata: EndpointMetadata | null): Promise<void>;
  setEndpointState(id: string, state: EndpointState, lastSeen?: number | null): Promise<void>;
  /** Endpoints the user owns or may use through their group, by name. */
  endpointsFor(userId: string): Promise<EndpointRecord[]>;
  allEndpoints(): Promise<EndpointRecord[]>;

  // functions
  /**
   * With `maxPerOwner`, throws QuotaExceededError (nothing written) when the owner has that many already;
   * with `maxBytesPerOwner`, when the source's UTF-8 bytes would take the owner's past it.
   */
  createFunction(f: { owner: string; name: string; source: string; group: string | null }, maxPerOwner?: number, maxBytesPerOwner?: number): Promise<FunctionRecord>;
  function(id: string): Promise<FunctionRecord | undefined>;
  /** Delete a function; tasks still queued for it fail at delivery with FunctionNotFound. */
  deleteFunction(id: string): Promise<void>;

  // tasks
  /**
   * Store accepted tasks, queued for their endpoint (transitions: received, waiting-for-endpoint). One transaction.
   * The `received` transition's actor is the owner (`user:NAME`), which is what the API passes as `actor`.
   */
  insertTasks(tasks: readonly NewTask[], actor: string, maxUnfinishedPerOwner?: number): Promise<void>;
  /** Take up to `limit` queued tasks of an endpoint, oldest first, marking them delivered (waiting-for-nodes). */
  takeQueued(endpointId: string, limit: number): Promise<TaskEnvelope[]>;
  /** Put every delivered-but-unfinished task of an endpoint back in its queue; returns how many. */
  requeueInFlight(endpointId: string): Promise<number>;
  /** Mark delivered tasks running; returns how many changed. */
  markRunning(endpointId: string, ids: readonly string[]): Promise<number>;
  /**
   * Store results without decoding them; results of finished or foreign tasks are dropped. One transaction,
   * which also marks `running` the delivered tasks the endpoint said started (a task finishing in the same
   * batch gets its running transition with its result, in one write).
   */
  storeResults(endpointId: string, results: readonly ResultEnvelope[], running?: readonly string[]): Promise<StoredResults>;
  task(id: string): Promise<TaskRecord | undefined>;
  /** Many tasks at once, by id (missing ids are absent from the map). */
  tasks(ids: readonly string[]): Promise<Map<string, TaskRecord>>;
  /** Many tasks by id without their results, with the results' sizes (missing ids are absent). */
  taskSummaries(ids: readonly string[]): Promise<Map<string, TaskSummary>>;
  transitions(taskId: string): Promise<Transition[]>;
  countQueued(endpointId: string): Promise<number>;

  // named tokens, quotas per user, usage (tenancy.ts of each back end)
  /** A new named token (returned once); undefined when the user has a token of that name already. */
  createApiToken(userId: string, name: string, expiresAt: number | null): Promise<{ token: string; record: ApiToken } | undefined>;
  /** The user's named tokens, expired ones included, by name. */
  apiTokens(userId: string): Promise<ApiToken[]>;
  /** Delete the named token: it is refused from now on. False when there is none of that name. */
  revokeApiToken(userId: string, name: string): Promise<boolean>;
  quotaOverrides(userId: string): Promise<QuotaOverrides>;
  /** Set (a number) or clear (null) the user's own quotas; absent keys are left as they are. */
  setQuotaOverrides(userId: string, quotas: Partial<Record<QuotaKey, number | null>>): Promise<void>;
  /** Bytes of results the user's tasks hold in the store. */
  resultBytesOf(userId: string): Promise<number>;
  /** What the user holds, per quota. */
  usage(userId: string): Promise<Usage>;
  /** What a submission of `userId` naming these endpoints and functions is checked against (one round trip on PostgreSQL). */
  submissionContext(userId: string, endpointIds: readonly string[], functionIds: readonly string[]): Promise<SubmissionContext>;
  /** Delete finished tasks of `owner` (their results free the resultBytes quota); returns the ids deleted. */
  deleteFinishedTasks(owner: string, ids: readonly string[]): Promise<string[]>;

  // schema
  /** The schema version the database is at (the highest migration applied). */
  schemaVersion(): Promise<number>;
}

export type StoreKind = 'sqlite' | 'postgres';
