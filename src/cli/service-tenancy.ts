/**
 * `funcx-service token create/list/revoke` (named API tokens with an optional expiry) and
 * `funcx-service user quota NAME` (a user's own quotas, and what they use). They work on the service's
 * database directly, so they need no running service; a running one sees the change at its next request
 * (an open long-poll with a revoked token ends within a second: src/service/token-watch.ts).
 */
import { Command, InvalidArgumentError } from 'commander';
import { FuncxError } from '../errors.js';
import { parseDuration } from '../service/durations.js';
import { DEFAULT_QUOTAS } from '../service/limits.js';
import type { QuotaKey, Store, User } from '../service/store/index.js';

/** Runs `fn` on the named user in the database `flags.database` names (service-commands/state.ts's withUser). */
export type WithUser = (name: string, flags: { database?: string }, fn: (store: Store, user: User) => Promise<void>) => Promise<void>;

const TOKEN_NAME = /^[A-Za-z0-9._@-]{1,100}$/;
const SIZE_UNITS: Readonly<Record<string, number>> = Object.freeze({ '': 1, b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4 });

/** `N`, `N KiB`, `10GiB`... → bytes. */
export function parseBytes(text: string): number {
  const m = /^\s*(\d+)\s*([kmgt]?i?b)?\s*$/i.exec(text);
  const unit = (m?.[2] ?? '').toLowerCase();
  if (!m || !(unit in SIZE_UNITS)) throw new InvalidArgumentError('expected bytes, e.g. 1000000, 512MiB or 10GiB');
  const n = Number(m[1]) * SIZE_UNITS[unit];
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('too large');
  return n;
}

function count(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number ≥ 0');
  return n;
}

function duration(value: string): number {
  try {
    return parseDuration(value, '--expires');
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function tokenName(value: string): string {
  if (!TOKEN_NAME.test(value)) throw new InvalidArgumentError('a token name may only use letters, digits, ".", "_", "@" and "-"');
  return value;
}

const iso = (ms: number | null) => (ms === null ? 'never' : new Date(ms).toISOString());

export function addTokenCommands(token: Command, withUser: WithUser): void {
  token
    .command('create')
    .description('create a named token for a user (printed once; only its hash is kept)')
    .requiredOption('--user <name>', 'the user')
    .requiredOption('--name <name>', 'the token\'s name (unique per user), e.g. "laptop" or "ci"', tokenName)
    .option('--expires <duration>', 'refuse it after this long: 90s, 15m, 12h, 30d, 2w (default: never)', duration)
    .option('--database <location>', 'as for start')
    .action(async (flags: { user: string; name: string; expires?: number; database?: string }) =>
      withUser(flags.user, flags, async (store, u) => {
        const created = await store.createApiToken(u.id, flags.name, flags.expires === undefined ? null : Date.now() + flags.expires);
        if (!created) throw new FuncxError('TOKEN_EXISTS', `user ${u.name} has a token named ${flags.name} already`, ['revoke it first, or choose another name']);
        process.stderr.write(`Token ${flags.name} of ${u.name} (expires ${iso(created.record.expiresAt)}), printed once below:\n`);
        process.stdout.write(created.token + '\n');
      }));
  token
    .command('list')
    .description("list a user's named tokens (names and expiry, never the tokens)")
    .requiredOption('--user <name>', 'the user')
    .option('--json', 'print JSON')
    .option('--database <location>', 'as for start')
    .action(async (flags: { user: string; json?: boolean; database?: string }) =>
      withUser(flags.user, flags, async (store, u) => {
        const now = Date.now();
        const tokens = (await store.apiTokens(u.id)).map((t) => ({
          name: t.name, createdAt: iso(t.createdAt), expiresAt: t.expiresAt === null ? null : iso(t.expiresAt), expired: t.expiresAt !== null && t.expiresAt <= now,
        }));
        if (flags.json) {
          process.stdout.write(JSON.stringify(tokens) + '\n');
          return;
        }
        if (tokens.length === 0) process.stdout.write(`User ${u.name} has no named tokens (their own token is not listed: \`token rotate\` replaces it).\n`);
        for (const t of tokens) process.stdout.write(`${t.name}\tcreated ${t.createdAt}\texpires ${t.expiresAt ?? 'never'}${t.expired ? '\t(expired)' : ''}\n`);
      }));
  token
    .command('revoke')
    .description('revoke a named token: refused at once, open long-polls with it end')
    .requiredOption('--user <name>', 'the user')
    .requiredOption('--name <name>', 'the token\'s name')
    .option('--database <location>', 'as for start')
    .action(async (flags: { user: string; name: string; database?: string }) =>
      withUser(flags.user, flags, async (store, u) => {
        if (!(await store.revokeApiToken(u.id, flags.name))) throw new FuncxError('NO_SUCH_TOKEN', `user ${u.name} has no token named ${flags.name}`, [`see \`funcx-service token list --user ${u.name}\``]);
        process.stdout.write(`Token ${flags.name} of ${u.name} is revoked.\n`);
      }));
}

interface QuotaFlags {
  tasks?: number;
  functions?: number;
  endpoints?: number;
  resultBytes?: number;
  groups?: number;
  invitations?: number;
  inbox?: number;
  functionBytes?: number;
  reset?: boolean;
  json?: boolean;
  database?: string;
}

/**
 * `user quota NAME [--tasks N] [--functions N] [--endpoints N] [--result-bytes SIZE] [--groups N]
 * [--invitations N] [--inbox N] [--function-bytes SIZE] [--reset]`: set the
 * user's own quotas (--reset: back to the service's), then print them with what the user uses. The
 * service's defaults shown are the built-in ones; a service started with --quota-* applies its own.
 */
export function addQuotaCommand(user: Command, withUser: WithUser): void {
  user
    .command('quota <name>')
    .description("show a user's quotas and use; with options, set the user's own (the service's apply otherwise)")
    .option('--tasks <n>', 'unfinished tasks', count)
    .option('--functions <n>', 'functions', count)
    .option('--endpoints <n>', 'endpoints', count)
    .option('--result-bytes <size>', 'bytes of stored results, e.g. 50GiB', parseBytes)
    .option('--groups <n>', 'groups owned', count)
    .option('--invitations <n>', 'invitations sent and not yet answered', count)
    .option('--inbox <n>', 'invitations pending in the user\'s own inbox', count)
    .option('--function-bytes <size>', 'bytes of function sources, e.g. 256MiB', parseBytes)
    .option('--reset', "drop the user's own quotas (the service's apply again)")
    .option('--json', 'print JSON')
    .option('--database <location>', 'as for start')
    .action(async (name: string, flags: QuotaFlags) =>
      withUser(name, flags, async (store, u) => {
        const keys: QuotaKey[] = ['tasks', 'functions', 'endpoints', 'resultBytes', 'groups', 'invitations', 'inbox', 'functionBytes'];
        if (flags.reset) await store.setQuotaOverrides(u.id, Object.fromEntries(keys.map((k) => [k, null])));
        const set = Object.fromEntries(keys.filter((k) => flags[k] !== undefined).map((k) => [k, flags[k]!]));
        await store.setQuotaOverrides(u.id, set);
        const [own, usage] = await Promise.all([store.quotaOverrides(u.id), store.usage(u.id)]);
        const rows = keys.map((k) => ({ quota: k, limit: own[k] ?? DEFAULT_QUOTAS[k], own: own[k] !== undefined, used: usage[k] }));
        if (flags.json) {
          process.stdout.write(JSON.stringify({ user: u.name, quotas: rows }) + '\n');
          return;
        }
        process.stdout.write(`Quotas of ${u.name} (own: set for this user; otherwise the service's default):\n`);
        for (const r of rows) process.stdout.write(`  ${r.quota.padEnd(14)} ${String(r.used).padStart(14)} used of ${String(r.limit).padStart(14)}${r.own ? '  (own)' : ''}\n`);
      }));
}
