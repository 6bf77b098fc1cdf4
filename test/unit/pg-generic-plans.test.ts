/**
 * PostgreSQL: every statement NAMED marks `generic` (planned once per connection, the plan reused; pg-sql.ts)
 * reaches each of its tables by an equality on all the columns of a unique index, whatever the tables hold
 * when it is planned: empty and never analyzed (a new database), young and just analyzed (a few rows, where a
 * sequential scan or a walk of another index is cheapest and would stay cached while the table grows), and
 * grown (50,000 tasks). Such a plan reads one row per key at any size. A statement that fails here must be
 * rewritten or marked `custom`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { NAMED, type NamedStatement } from '../../src/service/store/pg-sql.js';
import { PG_GENERIC_SESSION_OPTIONS } from '../../src/service/store/pg-connection.js';
import { postgresBackend } from '../helpers/store-backends.js';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  Plans?: PlanNode[];
}

const GENERIC = Object.entries(NAMED as Record<string, NamedStatement>).filter(([, s]) => s.plan === 'generic');

/** The columns of each unique index of the database, by index name. */
async function uniqueIndexes(c: pg.Client): Promise<Map<string, string[]>> {
  const { rows } = await c.query(`SELECT i.relname AS index, array_agg(a.attname::text) AS cols FROM pg_index x
    JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY (x.indkey)
    WHERE x.indisunique GROUP BY i.relname`);
  return new Map(rows.map((r) => [r.index as string, r.cols as string[]]));
}

/** What is wrong with the plan's table scans (empty: each is an equality on a whole unique key). */
function faults(node: PlanNode, unique: Map<string, string[]>): string[] {
  const out: string[] = [];
  const keyed = (n: PlanNode) => {
    const cols = n['Index Name'] ? unique.get(n['Index Name']) : undefined;
    const cond = n['Index Cond'] ?? '';
    return cols !== undefined && cols.every((col) => new RegExp(`\\b${col} = `).test(cond));
  };
  const describe = (n: PlanNode) => `${n['Node Type']} on ${n['Relation Name']}${n['Index Name'] ? ` using ${n['Index Name']}` : ''} (Index Cond: ${n['Index Cond'] ?? 'none'})`;
  const type = node['Node Type'];
  if (node['Relation Name'] !== undefined && type !== 'ModifyTable') {
    if (type === 'Index Scan' || type === 'Index Only Scan') {
      if (!keyed(node)) out.push(describe(node));
    } else if (type === 'Bitmap Heap Scan') {
      const [child, ...more] = node.Plans ?? [];
      if (!child || more.length > 0 || child['Node Type'] !== 'Bitmap Index Scan' || !keyed(child)) out.push(describe(node));
      return out;
    } else out.push(describe(node));
  }
  for (const child of node.Plans ?? []) out.push(...faults(child, unique));
  return out;
}

/** The generic plan of each statement, as the lookup pool's sessions make it; the faults of each. */
async function check(c: pg.Client, stage: string): Promise<string[]> {
  const unique = await uniqueIndexes(c);
  const out: string[] = [];
  for (const [name, s] of GENERIC) {
    const params = Math.max(0, ...[...s.text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
    await c.query('DEALLOCATE ALL');
    await c.query(`PREPARE p AS ${s.text}`);
    const { rows } = await c.query(`EXPLAIN (FORMAT JSON) EXECUTE p(${Array(params).fill('NULL').join(', ')})`);
    const plan = (rows[0]['QUERY PLAN'] as Array<{ Plan: PlanNode }>)[0].Plan;
    for (const f of faults(plan, unique)) out.push(`${stage}: ${name}: ${f}`);
  }
  return out;
}

const YOUNG = `
INSERT INTO users (id, name, token_hash, created_at) VALUES ('u1', 'alice', 'h1', 1), ('u2', 'bob', 'h2', 1);
INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) VALUES ('t1', 'u1', 'ci', 'th1', 1);
INSERT INTO groups (id, name, owner) VALUES ('g1', 'lab', 'u1');
INSERT INTO group_members (group_id, user_id) VALUES ('g1', 'u2');
INSERT INTO endpoints (id, name, owner, public_key, group_id, created_at, updated_at) VALUES ('e1', 'ep', 'u1', 'k', 'g1', 1, 1);
INSERT INTO functions (id, owner, name, source, group_id, created_at) VALUES ('f1', 'u1', 'f', 'def f(): pass', 'g1', 1);
INSERT INTO user_quotas (user_id) VALUES ('u1');
INSERT INTO user_usage (user_id, result_bytes) VALUES ('u1', 0) ON CONFLICT DO NOTHING;
INSERT INTO tasks (id, endpoint, function, owner, state, created_at, updated_at)
  SELECT 'task' || g, 'e1', 'f1', 'u1', CASE WHEN g % 2 = 0 THEN 'success' ELSE 'waiting-for-endpoint' END, 1, 1 FROM generate_series(1, 3) g;
ANALYZE;`;

const GROWN = `
INSERT INTO users (id, name, token_hash, created_at) SELECT 'u' || g, 'user' || g, 'h' || g, 1 FROM generate_series(3, 2000) g;
INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) SELECT 't' || g, 'u' || g, 'ci', 'th' || g, 1 FROM generate_series(2, 2000) g;
INSERT INTO groups (id, name, owner) SELECT 'g' || g, 'lab' || g, 'u' || g FROM generate_series(2, 500) g;
INSERT INTO group_members (group_id, user_id) SELECT 'g' || (g % 500 + 1), 'u' || g FROM generate_series(3, 2000) g ON CONFLICT DO NOTHING;
INSERT INTO endpoints (id, name, owner, public_key, group_id, created_at, updated_at) SELECT 'e' || g, 'ep', 'u' || g, 'k', 'g' || (g % 500 + 1), 1, 1 FROM generate_series(2, 1000) g;
INSERT INTO functions (id, owner, name, source, group_id, created_at) SELECT 'f' || g, 'u' || g, 'f', 'def f(): pass', NULL, 1 FROM generate_series(2, 1000) g;
INSERT INTO user_quotas (user_id) SELECT 'u' || g FROM generate_series(2, 2000) g;
INSERT INTO user_usage (user_id, result_bytes) SELECT 'u' || g, 0 FROM generate_series(2, 2000) g ON CONFLICT DO NOTHING;
INSERT INTO tasks (id, endpoint, function, owner, state, created_at, updated_at)
  SELECT 'task' || g, 'e' || (g % 1000 + 1), 'f1', 'u' || (g % 2000 + 1), CASE WHEN g % 10 = 0 THEN 'waiting-for-endpoint' ELSE 'success' END, 1, 1
  FROM generate_series(4, 50000) g;
ANALYZE;`;

test('every generic statement reads each table by a whole unique key: on empty, young and grown tables', { skip: postgresBackend.skip }, async (t) => {
  assert.ok(GENERIC.length > 0);
  for (const [name, s] of GENERIC) assert.ok(s.why.length > 0, `${name} says why it is generic`);
  const db = await postgresBackend.create();
  t.after(() => db.drop());
  await (await db.open()).close(); // migrated
  // As the lookup pool's sessions plan (PgStore).
  const c = new pg.Client({ connectionString: db.location, options: PG_GENERIC_SESSION_OPTIONS });
  await c.connect();
  const found: string[] = [];
  try {
    found.push(...await check(c, 'empty'));
    await c.query('ANALYZE');
    found.push(...await check(c, 'empty, analyzed'));
    await c.query(YOUNG);
    found.push(...await check(c, 'young'));
    await c.query(GROWN);
    found.push(...await check(c, 'grown'));
  } finally {
    await c.end();
  }
  assert.deepEqual(found, []);
});

test('the check finds a sequential scan, a walk of another index and a lookup by part of a key', () => {
  const unique = new Map([['users_pkey', ['id']], ['group_members_pkey', ['group_id', 'user_id']]]);
  assert.deepEqual(faults({ 'Node Type': 'Index Scan', 'Relation Name': 'users', 'Index Name': 'users_pkey', 'Index Cond': '(id = $1)' }, unique), []);
  assert.equal(faults({ 'Node Type': 'Seq Scan', 'Relation Name': 'users' }, unique).length, 1);
  assert.equal(faults({ 'Node Type': 'Index Scan', 'Relation Name': 'users', 'Index Name': 'users_pkey' }, unique).length, 1);
  assert.equal(faults({ 'Node Type': 'Index Scan', 'Relation Name': 'group_members', 'Index Name': 'group_members_pkey', 'Index Cond': '(group_id = $1)' }, unique).length, 1);
  assert.equal(faults({ 'Node Type': 'Limit', Plans: [{ 'Node Type': 'Index Scan', 'Relation Name': 'x', 'Index Name': 'x_owner', 'Index Cond': '(owner = $1)' }] }, unique).length, 1);
});
