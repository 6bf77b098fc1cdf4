/**
 * The statements of the PostgreSQL store's hot paths and quota counts (postgres.ts runs them). Each hot path is
 * one statement over `unnest`ed arrays, so a batch of any size is one round trip and atomic without an
 * explicit transaction.
 */
import type { QuotaName } from './types.js';

/** What each counted quota holds now, for an owner ($1). */
export const QUOTA_COUNT: Record<QuotaName, string> = {
  tasks: `SELECT count(*)::int AS n FROM tasks WHERE owner = $1 AND state NOT IN ('success', 'failed')`,
  functions: 'SELECT count(*)::int AS n FROM functions WHERE owner = $1',
  endpoints: 'SELECT count(*)::int AS n FROM endpoints WHERE owner = $1',
  groups: 'SELECT count(*)::int AS n FROM groups WHERE owner = $1',
  invitations: 'SELECT count(*)::int AS n FROM group_invites i JOIN groups g ON g.id = i.group_id WHERE g.owner = $1',
  inbox: 'SELECT count(*)::int AS n FROM group_invites WHERE user_id = $1',
  functionBytes: 'SELECT COALESCE(MAX(function_bytes), 0)::bigint AS n FROM user_usage WHERE user_id = $1',
};

// The task row carries its transitions (transitions.ts): one write per transition. Before a requeue or a
// service-side failure overwrites them, `materialize` turns the row's delivered/running times into rows.
const materialize = (picked: string, last: string) => `INSERT INTO task_transitions (task, state, actor, at)
      SELECT seq, state, actor, at FROM (
        SELECT seq, 1 AS n, 'waiting-for-nodes' AS state, 'forwarder' AS actor, delivered_at AS at FROM ${picked} WHERE delivered_at IS NOT NULL
        UNION ALL SELECT seq, 2, 'running', 'endpoint', running_at FROM ${picked} WHERE running_at IS NOT NULL
        UNION ALL SELECT seq, 3, ${last} FROM ${picked}) x ORDER BY seq, n`;


/**
 * Where every change that can end a token's use (rotate, revoke, disable, remove) is told, by the statement
 * that makes it, so each replica's TokenWatch learns of it at once, whoever made it (another replica, the CLI).
 */
export const TOKENS_CHANNEL = 'funcx_tokens';
const TELL_TOKENS = `pg_notify('${TOKENS_CHANNEL}', 'store changed')`;

/** Task ids (UUIDs, 37 bytes with the comma) per notification: NOTIFY payloads are capped at 8000 bytes. */
const IDS_PER_NOTIFICATION = 150;

function storeResults(announce: boolean): string {
  return `WITH input AS (
      SELECT * FROM unnest($2::text[], $3::boolean[], $4::bytea[], $7::boolean[]) WITH ORDINALITY AS u(id, failed, payload, ran, ord)),
    first AS (SELECT DISTINCT ON (id) * FROM input ORDER BY id, ord),
    -- cardinality: with no such tasks (the usual case) the update plans to nothing, not a scan of the endpoint's in-flight tasks.
    started AS (UPDATE tasks SET state = 'running', running_at = $5, updated_at = $5
      WHERE cardinality($6::text[]) > 0 AND endpoint = $1 AND id = ANY($6::text[]) AND state = 'waiting-for-nodes'),
    upd AS (UPDATE tasks t SET state = CASE WHEN first.failed THEN 'failed' ELSE 'success' END, failed = first.failed,
        result = first.payload, updated_at = $5,
        running_at = CASE WHEN first.ran AND t.running_at IS NULL AND t.state = 'waiting-for-nodes' THEN $5 ELSE t.running_at END
      FROM first WHERE t.id = first.id AND t.endpoint = $1 AND t.state NOT IN ('success', 'failed') RETURNING t.id, first.ord)
    ${announce ? `, told AS (SELECT pg_notify($8, $9 || ' ' || string_agg(id, ',')) FROM (
        SELECT id, (row_number() OVER ()) / ${IDS_PER_NOTIFICATION} AS chunk FROM upd) c GROUP BY chunk)` : ''}
    SELECT input.id, upd.ord IS NOT NULL AND upd.ord = input.ord AS stored,${announce ? ' (SELECT count(*) FROM told) AS told,' : ''}
      CASE WHEN upd.ord IS NOT NULL THEN true ELSE EXISTS (SELECT 1 FROM tasks k WHERE k.id = input.id AND k.endpoint = $1) END AS known
    FROM input LEFT JOIN upd ON upd.id = input.id ORDER BY input.ord`;
}

/** Statements run unnamed: planned with their values each time, not on the hot paths. */
export const SQL = {
  rotateToken: `WITH u AS (UPDATE users SET token_hash = $1 WHERE id = $2) SELECT ${TELL_TOKENS}`,
  setUserDisabled: `WITH u AS (UPDATE users SET disabled = $1 WHERE id = $2) SELECT ${TELL_TOKENS}`,
  revokeApiToken: `WITH d AS (DELETE FROM api_tokens WHERE user_id = $1 AND name = $2 RETURNING id) SELECT id, ${TELL_TOKENS} FROM d`,
  tellTokens: `SELECT ${TELL_TOKENS}`,
  // The two arms match the partial indexes (a BitmapOr), not a scan of every task of the table.
  failEndpointTasks: `WITH picked AS (SELECT seq, id, delivered_at, running_at FROM tasks
      WHERE endpoint = $1 AND (state = 'waiting-for-endpoint' OR state IN ('waiting-for-nodes', 'running')) FOR UPDATE),
    upd AS (UPDATE tasks t SET state = 'failed', failed = true, result = $2, delivered_at = NULL, running_at = NULL, updated_at = $3
      FROM picked WHERE t.seq = picked.seq RETURNING t.id),
    tr AS (${materialize('picked', `'failed', 'service', $3::bigint`)})
    SELECT id FROM upd`,
  transitions: `SELECT t.state, t.created_at, t.updated_at, t.delivered_at, t.running_at, u.name AS owner_name,
      COALESCE((SELECT json_agg(json_build_object('state', tr.state, 'actor', tr.actor, 'at', tr.at) ORDER BY tr.id)
        FROM task_transitions tr WHERE tr.task = t.seq), '[]'::json) AS rows
    FROM tasks t LEFT JOIN users u ON u.id = t.owner WHERE t.id = $1`,
};

/**
 * How PostgreSQL plans a named (prepared) statement; PgStore runs each on the pool whose sessions plan so.
 * - custom: planned again at every bind, with its values and the tables as they are now (PG_SESSION_OPTIONS).
 *   Planning costs 0.1-0.5 ms a call, but a plan never outlives the table sizes it was made for.
 * - generic: planned once per connection without its values, and reused until an ANALYZE or a schema change
 *   of one of its tables (PG_GENERIC_SESSION_OPTIONS, sequential scans priced out). Only for a statement
 *   that reaches every table by an equality on all the columns of a unique index: that plan reads one row
 *   per key at any table size, and it is the plan PostgreSQL makes even on empty or just-analyzed young
 *   tables. test/unit/pg-generic-plans.test.ts checks the plan of each on empty, young and grown tables.
 *   Such a statement reads a second table only by a lookup per row it found (a LATERAL subquery or EXISTS
 *   with OFFSET 0, a scalar subquery), never by a join: on young tables, where every plan costs the same, a
 *   join was planned as a walk of both tables, and EXISTS as a hash of every row of the second.
 *   A statement on `tasks` by anything but its id (partial indexes, counts, batches of an endpoint) stays
 *   custom: a generic plan cached on young tables walked every unfinished task (issue 14).
 * Statements inside a transaction (PgStore.tx: quota locks and counts) run on the custom pool.
 */
export type Planning = 'custom' | 'generic';

export interface NamedStatement {
  plan: Planning;
  /** Why this plan: the unique keys for `generic`; what a cached plan would get wrong for `custom`. */
  why: string;
  text: string;
}

const TASK_COLUMNS = 'id, endpoint, function, owner, state, failed, result, created_at, updated_at';

/** Every named statement of the store, by its prepared-statement name. */
export const NAMED = {
  // A user's own token, or a named one that has not expired (migration 8); at most two rows, the caller takes
  // the first. The token's user by a LATERAL lookup (OFFSET 0 keeps it one): as a join, the generic plan made
  // on young tables walked every api token and every user.
  'user-by-any-token': {
    plan: 'generic',
    why: 'users.token_hash, api_tokens.token_hash and users.id are unique',
    text: `SELECT id, name, created_at, NULL::bigint AS expires_at FROM users WHERE token_hash = $1 AND NOT disabled
      UNION ALL SELECT u.id, u.name, u.created_at, t.expires_at FROM api_tokens t
        CROSS JOIN LATERAL (SELECT id, name, created_at FROM users WHERE id = t.user_id AND NOT disabled OFFSET 0) u
        WHERE t.token_hash = $1 AND (t.expires_at IS NULL OR t.expires_at > $2)`,
  },
  // Everything a submission is checked against in one read (Store.submissionContext); records as JSON rows.
  // The groups the user may use: each group id's owner by a scalar subquery, its membership by EXISTS with
  // OFFSET 0 (not hashed): as IN and EXISTS, the generic plan made on young tables walked groups and
  // every membership of the user.
  'submission-context': {
    plan: 'generic',
    why: 'user_quotas, user_usage, endpoints, functions and groups by primary key (id = ANY: one row per id), group_members by its whole key',
    text: `SELECT (SELECT row_to_json(q) FROM user_quotas q WHERE q.user_id = $1) AS quotas,
      (SELECT u.result_bytes FROM user_usage u WHERE u.user_id = $1) AS result_bytes,
      (SELECT json_agg(e) FROM endpoints e WHERE e.id = ANY($2::text[])) AS endpoints,
      (SELECT json_agg(f) FROM functions f WHERE f.id = ANY($3::text[])) AS functions,
      ARRAY(SELECT k.id FROM (SELECT e.group_id AS id FROM endpoints e WHERE e.id = ANY($2::text[])
          UNION SELECT f.group_id FROM functions f WHERE f.id = ANY($3::text[])) k
        WHERE (SELECT g.owner FROM groups g WHERE g.id = k.id) = $1
          OR EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = k.id AND m.user_id = $1 OFFSET 0)) AS groups`,
  },
  'endpoint': { plan: 'generic', why: 'endpoints by primary key', text: 'SELECT * FROM endpoints WHERE id = $1' },
  'endpoint-state': {
    plan: 'generic',
    why: 'endpoints by primary key',
    text: 'UPDATE endpoints SET state = $1, last_seen = COALESCE($2, last_seen) WHERE id = $3',
  },
  'function': { plan: 'generic', why: 'functions by primary key', text: 'SELECT * FROM functions WHERE id = $1' },
  // The membership by ($1, $2), not by g.id: correlated, it was hashed over every membership of the user.
  'is-member': {
    plan: 'generic',
    why: 'groups by primary key, group_members by its whole key',
    text: `SELECT 1 FROM groups g WHERE g.id = $1 AND (g.owner = $2
      OR EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = $1 AND m.user_id = $2))`,
  },
  'result-bytes-of': { plan: 'generic', why: 'user_usage by primary key', text: 'SELECT result_bytes FROM user_usage WHERE user_id = $1' },
  'task': { plan: 'generic', why: 'tasks.id is unique', text: `SELECT ${TASK_COLUMNS} FROM tasks WHERE id = $1` },
  'tasks': { plan: 'generic', why: 'tasks.id is unique (id = ANY: one row per id)', text: `SELECT ${TASK_COLUMNS} FROM tasks WHERE id = ANY($1::text[])` },
  'task-summaries': {
    plan: 'generic',
    why: 'tasks.id is unique (id = ANY: one row per id)',
    text: `SELECT id, endpoint, function, owner, state, failed, COALESCE(octet_length(result), 0)::int AS result_bytes,
      created_at, updated_at FROM tasks WHERE id = ANY($1::text[])`,
  },
  // Migration 11: the quota's lock, its count and the insert in one call (one round trip, one statement).
  'insert-tasks': {
    plan: 'custom',
    why: 'the function\'s own statements (the quota count on tasks_unfinished_by_owner) follow the session\'s plan_cache_mode',
    text: 'SELECT quota_owner, quota_used, quota_adding FROM funcx_insert_tasks($1, $2, $3, $4, $5, $6, $7)',
  },
  // The payloads by a subquery per task: as a join, the planner (not knowing how many rows upd returns) hashed
  // every payload in the table, 6 ms at 24,000 tasks and growing with the table.
  'take-queued': {
    plan: 'custom',
    why: 'an endpoint\'s queued tasks by the partial index tasks_queued, LIMIT $2: how many and which plan depend on the values',
    text: `WITH picked AS (
      SELECT seq FROM tasks WHERE endpoint = $1 AND state = 'waiting-for-endpoint' ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED),
    upd AS (UPDATE tasks t SET state = 'waiting-for-nodes', delivered_at = $3, updated_at = $3 FROM picked WHERE t.seq = picked.seq
      RETURNING t.seq, t.id, t.function, t.owner)
    SELECT upd.seq, upd.id, upd.function, upd.owner, (SELECT p.payload FROM task_payloads p WHERE p.seq = upd.seq) AS payload,
      (SELECT owner FROM endpoints WHERE id = $1) AS endpoint_owner
    FROM upd ORDER BY upd.seq`,
  },
  'requeue': {
    plan: 'custom',
    why: 'every in-flight task of an endpoint (partial index tasks_in_flight): many rows',
    text: `WITH picked AS (SELECT seq, delivered_at, running_at FROM tasks
      WHERE endpoint = $1 AND state IN ('waiting-for-nodes', 'running') FOR UPDATE),
    upd AS (UPDATE tasks t SET state = 'waiting-for-endpoint', delivered_at = NULL, running_at = NULL, updated_at = $2
      FROM picked WHERE t.seq = picked.seq AND t.state IN ('waiting-for-nodes', 'running') RETURNING t.seq),
    tr AS (${materialize('picked', `'waiting-for-endpoint', 'forwarder', $2::bigint`)})
    SELECT count(*)::int AS n FROM upd`,
  },
  'running': {
    plan: 'custom',
    why: 'a batch of ids of any size, and a state the partial indexes match',
    text: `WITH upd AS (UPDATE tasks SET state = 'running', running_at = $3, updated_at = $3
      WHERE endpoint = $1 AND id = ANY($2::text[]) AND state = 'waiting-for-nodes' RETURNING seq)
    SELECT count(*)::int AS n FROM upd`,
  },
  // One input row per result; `stored` when this statement finished the task, else `known` tells a duplicate
  // (the endpoint's own finished task) from an unknown id. `ran`: the endpoint said it started, not yet
  // written; $6 are the tasks that started and have no result in this batch (so no row is updated twice).
  'store-results': {
    plan: 'custom',
    why: 'the generic plan cached on young tables walked every unfinished task by tasks_unfinished_by_owner (issue 14); cardinality($6) > 0 folds only with the values',
    text: storeResults(false),
  },
  // The same, and the ids stored told to the other replicas ($8 the channel, $9 this replica) when it commits.
  'store-results-announced': { plan: 'custom', why: 'as store-results', text: storeResults(true) },
  'count-queued': {
    plan: 'custom',
    why: 'counts an endpoint\'s queued tasks (partial index tasks_queued): many rows',
    text: `SELECT count(*)::int AS n FROM tasks WHERE endpoint = $1 AND state = 'waiting-for-endpoint'`,
  },
} satisfies Record<string, NamedStatement>;

export type StatementName = keyof typeof NAMED;
