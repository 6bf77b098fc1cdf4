/**
 * The service's state in one SQLite file (WAL): users (tokens stored only as SHA-256 hashes), groups,
 * endpoints, functions, tasks with their opaque payloads and results, and every task transition.
 *
 * The tasks table is also the forwarder's queue: a task waits in state `waiting-for-endpoint` until the
 * forwarder takes it, so a service restart loses nothing that was accepted. Hot paths (submit, deliver,
 * results) run in one transaction per batch and touch small rows: payloads live in their own table.
 */
import Database from 'better-sqlite3';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { chmodSync } from 'node:fs';
import type { ResultEnvelope, TaskEnvelope } from '../protocol/messages.js';
import type { ForwarderChannel } from '../protocol/forwarder-messages.js';

/** received → waiting-for-endpoint → waiting-for-nodes → running → success | failed. */
export type TaskState = 'received' | 'waiting-for-endpoint' | 'waiting-for-nodes' | 'running' | 'success' | 'failed';
export type EndpointState = 'Active' | 'Inactive';

export type User = { id: string; name: string; createdAt: number };
export type Group = { id: string; name: string; owner: string };

export interface EndpointMetadata { username: string; email: string }

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
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, token_hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS groups (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, owner TEXT NOT NULL REFERENCES users(id));
CREATE TABLE IF NOT EXISTS group_members (group_id TEXT NOT NULL REFERENCES groups(id), user_id TEXT NOT NULL REFERENCES users(id),
  PRIMARY KEY (group_id, user_id));
CREATE TABLE IF NOT EXISTS endpoints (id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT NOT NULL REFERENCES users(id),
  public_key TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'Inactive', last_seen INTEGER, group_id TEXT REFERENCES groups(id),
  ports TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, metadata TEXT);
CREATE TABLE IF NOT EXISTS functions (id TEXT PRIMARY KEY, owner TEXT NOT NULL REFERENCES users(id), name TEXT NOT NULL,
  source TEXT NOT NULL, group_id TEXT REFERENCES groups(id), created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, endpoint TEXT NOT NULL,
  function TEXT, owner TEXT NOT NULL, state TEXT NOT NULL, failed INTEGER, result BLOB,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
-- The forwarder's queue and its delivered-but-unfinished set are partial indexes: a task has an entry only
-- while it is in that state, so state changes elsewhere cost nothing here.
CREATE INDEX IF NOT EXISTS tasks_queued ON tasks(endpoint, seq) WHERE state = 'waiting-for-endpoint';
CREATE INDEX IF NOT EXISTS tasks_in_flight ON tasks(endpoint, seq) WHERE state IN ('waiting-for-nodes', 'running');
-- Payloads apart, so that state updates rewrite a small row.
CREATE TABLE IF NOT EXISTS task_payloads (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS task_transitions (task INTEGER NOT NULL, state TEXT NOT NULL, actor TEXT NOT NULL, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS transitions_by_task ON task_transitions(task);
`;

/** Tokens: `fx_` + 32 random bytes in base64url. */
export function newToken(): string {
  return 'fx_' + randomBytes(32).toString('base64url');
}

/** The only form of a token the service keeps. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

type Row = Record<string, unknown>;

function toEndpoint(r: Row): EndpointRecord {
  return {
    id: r.id as string,
    name: r.name as string,
    owner: r.owner as string,
    publicKey: r.public_key as string,
    state: r.state as EndpointState,
    lastSeen: (r.last_seen as number | null) ?? null,
    group: (r.group_id as string | null) ?? null,
    ports: r.ports ? (JSON.parse(r.ports as string) as EndpointRecord['ports']) : null,
    metadata: r.metadata ? (JSON.parse(r.metadata as string) as EndpointMetadata) : null,
    createdAt: r.created_at as number,
  };
}

function toTask(r: Row): TaskRecord {
  return {
    id: r.id as string,
    endpoint: r.endpoint as string,
    function: (r.function as string | null) ?? null,
    owner: r.owner as string,
    state: r.state as TaskState,
    failed: r.failed === null || r.failed === undefined ? null : r.failed === 1,
    result: (r.result as Buffer | null) ?? null,
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
  };
}

function prepareStatements(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
    insertUser: p('INSERT INTO users (id, name, token_hash, created_at) VALUES (?, ?, ?, ?)'),
    userByHash: p('SELECT id, name, created_at FROM users WHERE token_hash = ?'),
    userByName: p('SELECT id, name, created_at FROM users WHERE name = ?'),
    userById: p('SELECT id, name, created_at FROM users WHERE id = ?'),
    insertGroup: p('INSERT INTO groups (id, name, owner) VALUES (?, ?, ?)'),
    groupByRef: p('SELECT id, name, owner FROM groups WHERE id = ? OR name = ?'),
    addMember: p('INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)'),
    isMember: p('SELECT 1 FROM groups g WHERE g.id = ? AND (g.owner = ? OR EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id AND m.user_id = ?))'),
    groupsOf: p('SELECT DISTINCT g.id, g.name, g.owner FROM groups g LEFT JOIN group_members m ON m.group_id = g.id WHERE g.owner = ? OR m.user_id = ? ORDER BY g.name'),
    membersOf: p('SELECT u.name FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ? ORDER BY u.name'),
    endpoint: p('SELECT * FROM endpoints WHERE id = ?'),
    insertEndpoint: p(`INSERT INTO endpoints (id, name, owner, public_key, group_id, created_at, updated_at, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
    updateEndpoint: p('UPDATE endpoints SET name = ?, public_key = ?, group_id = ?, updated_at = ?, metadata = ? WHERE id = ?'),
    endpointPorts: p('UPDATE endpoints SET ports = ? WHERE id = ?'),
    endpointState: p('UPDATE endpoints SET state = ?, last_seen = COALESCE(?, last_seen) WHERE id = ?'),
    endpointsFor: p(`SELECT e.* FROM endpoints e WHERE e.owner = ? OR (e.group_id IS NOT NULL AND EXISTS (SELECT 1 FROM groups g
      WHERE g.id = e.group_id AND (g.owner = ? OR EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id AND m.user_id = ?))))
      ORDER BY e.name`),
    allEndpoints: p('SELECT * FROM endpoints'),
    insertFunction: p('INSERT INTO functions (id, owner, name, source, group_id, created_at) VALUES (?, ?, ?, ?, ?, ?)'),
    fn: p('SELECT * FROM functions WHERE id = ?'),
    insertTask: p(`INSERT INTO tasks (id, endpoint, function, owner, state, created_at, updated_at)
      VALUES (?, ?, ?, ?, 'waiting-for-endpoint', ?, ?)`),
    insertPayload: p('INSERT INTO task_payloads (seq, payload) VALUES (?, ?)'),
    transition: p('INSERT INTO task_transitions (task, state, actor, at) VALUES (?, ?, ?, ?)'),
    queued: p(`SELECT t.seq, t.id, t.function, p.payload FROM tasks t JOIN task_payloads p ON p.seq = t.seq
      WHERE t.endpoint = ? AND t.state = 'waiting-for-endpoint' ORDER BY t.seq LIMIT ?`),
    setState: p('UPDATE tasks SET state = ?, updated_at = ? WHERE seq = ?'),
    inFlight: p(`SELECT seq FROM tasks WHERE endpoint = ? AND state IN ('waiting-for-nodes', 'running') ORDER BY seq`),
    running: p(`UPDATE tasks SET state = 'running', updated_at = ? WHERE id = ? AND endpoint = ? AND state = 'waiting-for-nodes' RETURNING seq`),
    finish: p(`UPDATE tasks SET state = ?, failed = ?, result = ?, updated_at = ?
      WHERE id = ? AND endpoint = ? AND state NOT IN ('success', 'failed') RETURNING seq`),
    taskExists: p('SELECT 1 FROM tasks WHERE id = ? AND endpoint = ?'),
    task: p('SELECT id, endpoint, function, owner, state, failed, result, created_at, updated_at FROM tasks WHERE id = ?'),
    tasks: p(`SELECT id, endpoint, function, owner, state, failed, result, created_at, updated_at FROM tasks
      WHERE id IN (SELECT value FROM json_each(?))`),
    transitions: p(`SELECT tr.state, tr.actor, tr.at FROM task_transitions tr JOIN tasks t ON t.seq = tr.task WHERE t.id = ? ORDER BY tr.rowid`),
    countQueued: p(`SELECT COUNT(*) AS n FROM tasks WHERE endpoint = ? AND state = 'waiting-for-endpoint'`),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

export class Store {
  readonly db: Database.Database;
  private readonly q: Statements;

  constructor(readonly path: string) {
    this.db = new Database(path);
    // Results and token hashes are nobody else's business (SQLite gives -wal/-shm the same mode).
    if (path !== ':memory:' && path !== '') chmodSync(path, 0o600);
    this.db.pragma('journal_mode = WAL');
    // NORMAL is durable across process crashes in WAL mode; only a power cut can lose the last commits.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
    // Databases made before endpoints had metadata (username, email) get the column.
    const cols = this.db.prepare('PRAGMA table_info(endpoints)').all() as Array<{ name: string }>;
    if (!cols.some((c) => c.name === 'metadata')) this.db.exec('ALTER TABLE endpoints ADD COLUMN metadata TEXT');
    this.q = prepareStatements(this.db);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // ---- users ---------------------------------------------------------------------------------------------

  /** Create a user; the returned token is the only copy (only its hash is stored). */
  createUser(name: string): { user: User; token: string } {
    const token = newToken();
    const user: User = { id: randomUUID(), name, createdAt: Date.now() };
    this.q.insertUser.run(user.id, name, hashToken(token), user.createdAt);
    return { user, token };
  }

  userByToken(token: string): User | undefined {
    return this.user(this.q.userByHash.get(hashToken(token)) as Row | undefined);
  }

  userByName(name: string): User | undefined {
    return this.user(this.q.userByName.get(name) as Row | undefined);
  }

  userById(id: string): User | undefined {
    return this.user(this.q.userById.get(id) as Row | undefined);
  }

  private user(r: Row | undefined): User | undefined {
    return r && { id: r.id as string, name: r.name as string, createdAt: r.created_at as number };
  }

  // ---- groups --------------------------------------------------------------------------------------------

  createGroup(name: string, owner: string): Group {
    const group: Group = { id: randomUUID(), name, owner };
    this.q.insertGroup.run(group.id, name, owner);
    return group;
  }

  /** A group by its id or its name. */
  group(ref: string): Group | undefined {
    return this.q.groupByRef.get(ref, ref) as Group | undefined;
  }

  addGroupMember(groupId: string, userId: string): void {
    this.q.addMember.run(groupId, userId);
  }

  /** The owner of a group counts as a member. */
  isGroupMember(groupId: string, userId: string): boolean {
    return this.q.isMember.get(groupId, userId, userId) !== undefined;
  }

  groupsOf(userId: string): Array<Group & { members: string[] }> {
    return (this.q.groupsOf.all(userId, userId) as Group[]).map((g) => ({
      ...g,
      members: (this.q.membersOf.all(g.id) as Array<{ name: string }>).map((m) => m.name),
    }));
  }

  // ---- endpoints -----------------------------------------------------------------------------------------

  endpoint(id: string): EndpointRecord | undefined {
    const r = this.q.endpoint.get(id) as Row | undefined;
    return r && toEndpoint(r);
  }

  /** Create the endpoint, or update name, key and group of an existing one (ownership is checked by the caller). */
  saveEndpoint(e: { id: string; name: string; owner: string; publicKey: string; group: string | null; metadata?: EndpointMetadata | null }): EndpointRecord {
    const now = Date.now();
    const metadata = e.metadata ? JSON.stringify(e.metadata) : null;
    if (this.q.endpoint.get(e.id)) this.q.updateEndpoint.run(e.name, e.publicKey, e.group, now, metadata, e.id);
    else this.q.insertEndpoint.run(e.id, e.name, e.owner, e.publicKey, e.group, now, now, metadata);
    return this.endpoint(e.id)!;
  }

  setEndpointPorts(id: string, ports: Record<ForwarderChannel, number>): void {
    this.q.endpointPorts.run(JSON.stringify(ports), id);
  }

  setEndpointState(id: string, state: EndpointState, lastSeen: number | null = null): void {
    this.q.endpointState.run(state, lastSeen, id);
  }

  /** Endpoints the user owns or may use through their group. */
  endpointsFor(userId: string): EndpointRecord[] {
    return (this.q.endpointsFor.all(userId, userId, userId) as Row[]).map(toEndpoint);
  }

  allEndpoints(): EndpointRecord[] {
    return (this.q.allEndpoints.all() as Row[]).map(toEndpoint);
  }

  // ---- functions -----------------------------------------------------------------------------------------

  createFunction(f: { owner: string; name: string; source: string; group: string | null }): FunctionRecord {
    const record: FunctionRecord = { id: randomUUID(), createdAt: Date.now(), ...f };
    this.q.insertFunction.run(record.id, f.owner, f.name, f.source, f.group, record.createdAt);
    return record;
  }

  function(id: string): FunctionRecord | undefined {
    const r = this.q.fn.get(id) as Row | undefined;
    return r && { id: r.id as string, owner: r.owner as string, name: r.name as string, source: r.source as string,
      group: (r.group_id as string | null) ?? null, createdAt: r.created_at as number };
  }

  // ---- tasks ---------------------------------------------------------------------------------------------

  /** Store accepted tasks, queued for their endpoint (transitions: received, waiting-for-endpoint). */
  insertTasks(tasks: readonly NewTask[], actor: string): void {
    const now = Date.now();
    this.db.transaction(() => {
      for (const t of tasks) {
        const seq = this.q.insertTask.run(t.id, t.endpoint, t.function, t.owner, now, now).lastInsertRowid;
        this.q.insertPayload.run(seq, t.payload);
        this.q.transition.run(seq, 'received', actor, now);
        this.q.transition.run(seq, 'waiting-for-endpoint', 'service', now);
      }
    })();
  }

  /** Take up to `limit` queued tasks of an endpoint, oldest first, marking them delivered (waiting-for-nodes). */
  takeQueued(endpointId: string, limit: number): TaskEnvelope[] {
    const now = Date.now();
    return this.db.transaction(() => {
      const rows = this.q.queued.all(endpointId, limit) as Array<{ seq: number; id: string; function: string | null; payload: Buffer }>;
      for (const r of rows) {
        this.q.setState.run('waiting-for-nodes', now, r.seq);
        this.q.transition.run(r.seq, 'waiting-for-nodes', 'forwarder', now);
      }
      return rows.map((r) => (r.function ? { id: r.id, fn: r.function, payload: r.payload } : { id: r.id, payload: r.payload }));
    })();
  }

  /** Put every delivered-but-unfinished task of an endpoint back in its queue (it reconnected or restarted). */
  requeueInFlight(endpointId: string): number {
    const now = Date.now();
    return this.db.transaction(() => {
      const rows = this.q.inFlight.all(endpointId) as Array<{ seq: number }>;
      for (const r of rows) {
        this.q.setState.run('waiting-for-endpoint', now, r.seq);
        this.q.transition.run(r.seq, 'waiting-for-endpoint', 'forwarder', now);
      }
      return rows.length;
    })();
  }

  markRunning(endpointId: string, ids: readonly string[]): number {
    const now = Date.now();
    return this.db.transaction(() => {
      let n = 0;
      for (const id of ids) {
        const row = this.q.running.get(now, id, endpointId) as { seq: number } | undefined;
        if (row) {
          this.q.transition.run(row.seq, 'running', 'endpoint', now);
          n++;
        }
      }
      return n;
    })();
  }

  /** Store results from an endpoint without decoding them; results of finished or foreign tasks are dropped. */
  storeResults(endpointId: string, results: readonly ResultEnvelope[]): StoredResults {
    const now = Date.now();
    return this.db.transaction(() => {
      const out: StoredResults = { stored: [], duplicates: 0, unknown: 0 };
      for (const r of results) {
        const state: TaskState = r.failed ? 'failed' : 'success';
        const row = this.q.finish.get(state, r.failed ? 1 : 0, r.payload, now, r.id, endpointId) as { seq: number } | undefined;
        if (row) {
          this.q.transition.run(row.seq, state, 'endpoint', now);
          out.stored.push(r.id);
        } else if (this.q.taskExists.get(r.id, endpointId)) out.duplicates++;
        else out.unknown++;
      }
      return out;
    })();
  }

  task(id: string): TaskRecord | undefined {
    const r = this.q.task.get(id) as Row | undefined;
    return r && toTask(r);
  }

  /** Many tasks at once, by id (missing ids are absent from the map). */
  tasks(ids: readonly string[]): Map<string, TaskRecord> {
    const out = new Map<string, TaskRecord>();
    for (const r of this.q.tasks.all(JSON.stringify(ids)) as Row[]) out.set(r.id as string, toTask(r));
    return out;
  }

  transitions(taskId: string): Transition[] {
    return this.q.transitions.all(taskId) as Transition[];
  }

  countQueued(endpointId: string): number {
    return (this.q.countQueued.get(endpointId) as { n: number }).n;
  }
}
