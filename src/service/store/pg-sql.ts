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

export const SQL = {
  rotateToken: `WITH u AS (UPDATE users SET token_hash = $1 WHERE id = $2) SELECT ${TELL_TOKENS}`,
  setUserDisabled: `WITH u AS (UPDATE users SET disabled = $1 WHERE id = $2) SELECT ${TELL_TOKENS}`,
  revokeApiToken: `WITH d AS (DELETE FROM api_tokens WHERE user_id = $1 AND name = $2 RETURNING id) SELECT id, ${TELL_TOKENS} FROM d`,
  tellTokens: `SELECT ${TELL_TOKENS}`,
  // Everything a submission is checked against in one read (Store.submissionContext); records as JSON rows.
  submissionContext: `SELECT (SELECT row_to_json(q) FROM user_quotas q WHERE q.user_id = $1) AS quotas,
      (SELECT u.result_bytes FROM user_usage u WHERE u.user_id = $1) AS result_bytes,
      (SELECT json_agg(e) FROM endpoints e WHERE e.id = ANY($2::text[])) AS endpoints,
      (SELECT json_agg(f) FROM functions f WHERE f.id = ANY($3::text[])) AS functions,
      ARRAY(SELECT g.id FROM groups g WHERE g.id IN (SELECT e.group_id FROM endpoints e WHERE e.id = ANY($2::text[])
          UNION SELECT f.group_id FROM functions f WHERE f.id = ANY($3::text[]))
        AND (g.owner = $1 OR EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id AND m.user_id = $1))) AS groups`,
  // Migration 11: the quota's lock, its count and the insert in one call (one round trip, one statement).
  insertTasks: 'SELECT quota_owner, quota_used, quota_adding FROM funcx_insert_tasks($1, $2, $3, $4, $5, $6, $7)',
  // The payloads by a subquery per task: as a join, the planner (not knowing how many rows upd returns) hashed
  // every payload in the table, 6 ms at 24,000 tasks and growing with the table.
  takeQueued: `WITH picked AS (
      SELECT seq FROM tasks WHERE endpoint = $1 AND state = 'waiting-for-endpoint' ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED),
    upd AS (UPDATE tasks t SET state = 'waiting-for-nodes', delivered_at = $3, updated_at = $3 FROM picked WHERE t.seq = picked.seq
      RETURNING t.seq, t.id, t.function, t.owner)
    SELECT upd.seq, upd.id, upd.function, upd.owner, (SELECT p.payload FROM task_payloads p WHERE p.seq = upd.seq) AS payload,
      (SELECT owner FROM endpoints WHERE id = $1) AS endpoint_owner
    FROM upd ORDER BY upd.seq`,
  requeue: `WITH picked AS (SELECT seq, delivered_at, running_at FROM tasks
      WHERE endpoint = $1 AND state IN ('waiting-for-nodes', 'running') FOR UPDATE),
    upd AS (UPDATE tasks t SET state = 'waiting-for-endpoint', delivered_at = NULL, running_at = NULL, updated_at = $2
      FROM picked WHERE t.seq = picked.seq AND t.state IN ('waiting-for-nodes', 'running') RETURNING t.seq),
    tr AS (${materialize('picked', `'waiting-for-endpoint', 'forwarder', $2::bigint`)})
    SELECT count(*)::int AS n FROM upd`,
  running: `WITH upd AS (UPDATE tasks SET state = 'running', running_at = $3, updated_at = $3
      WHERE endpoint = $1 AND id = ANY($2::text[]) AND state = 'waiting-for-nodes' RETURNING seq)
    SELECT count(*)::int AS n FROM upd`,
  // One input row per result; `stored` when this statement finished the task, else `known` tells a duplicate
  // (the endpoint's own finished task) from an unknown id. `ran`: the endpoint said it started, not yet
  // written; $6 are the tasks that started and have no result in this batch (so no row is updated twice).
  storeResults: storeResults(false),
  // The same, and the ids stored told to the other replicas ($8 the channel, $9 this replica) when it commits.
  storeResultsAnnounced: storeResults(true),
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
  task: 'SELECT id, endpoint, function, owner, state, failed, result, created_at, updated_at FROM tasks WHERE id = $1',
  tasks: 'SELECT id, endpoint, function, owner, state, failed, result, created_at, updated_at FROM tasks WHERE id = ANY($1::text[])',
};

