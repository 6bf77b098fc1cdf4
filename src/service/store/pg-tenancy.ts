/**
 * Who uses a PostgreSQL store: users and their tokens, groups and invitations, quotas per user and usage.
 * PgStore (postgres.ts) adds endpoints, functions and tasks.
 */
import { randomUUID } from 'node:crypto';
import { toUser } from './rows.js';
import { hashToken, newToken } from './tokens.js';
import type { ApiToken, Group, InvitationQuotas, QuotaKey, QuotaOverrides, Usage, User } from './types.js';
import { QuotaExceededError } from './types.js';
import { QUOTA_COLUMNS, USAGE_COUNTS, toApiToken, toOverrides, toUsage } from './sqlite-tenancy.js';
import { SQL } from './pg-sql.js';
import { PgConnection } from './pg-connection.js';

export abstract class PgTenancy extends PgConnection {
  // ---- users ---------------------------------------------------------------------------------------------

  async createUser(name: string): Promise<{ user: User; token: string }> {
    const token = newToken();
    const user: User = { id: randomUUID(), name, createdAt: Date.now() };
    await this.rows('INSERT INTO users (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)', [user.id, name, hashToken(token), user.createdAt]);
    return { user, token };
  }

  async userByToken(token: string): Promise<User | undefined> {
    return toUser((await this.named('user-by-any-token', [hashToken(token), Date.now()]))[0]);
  }

  async rotateToken(userId: string): Promise<string> {
    const token = newToken();
    await this.rows(SQL.rotateToken, [hashToken(token), userId]);
    return token;
  }

  async setUserDisabled(userId: string, disabled: boolean): Promise<void> {
    await this.rows(SQL.setUserDisabled, [disabled, userId]);
  }

  async userByName(name: string): Promise<User | undefined> {
    return toUser(await this.row('SELECT id, name, created_at FROM users WHERE name = $1', [name]));
  }

  async userById(id: string): Promise<User | undefined> {
    return toUser(await this.row('SELECT id, name, created_at FROM users WHERE id = $1', [id]));
  }

  // ---- invitations ---------------------------------------------------------------------------------------

  async inviteToGroup(groupId: string, userId: string | null, quotas?: InvitationQuotas): Promise<void> {
    const insert = `INSERT INTO group_invites (group_id, user_id, created_at) SELECT $1, $2, $3
      WHERE NOT EXISTS (SELECT 1 FROM group_members WHERE group_id = $1 AND user_id = $2) ON CONFLICT DO NOTHING`;
    if (!quotas) {
      if (userId !== null) await this.rows(insert, [groupId, userId, Date.now()]);
      return;
    }
    // Locks in one order, the sender's then the inbox's (checkQuota): no transaction holds an inbox lock
    // while it waits for a sender's, so invitations crossing each other cannot deadlock.
    await this.tx(async (q) => {
      const owner = (await q('SELECT owner FROM groups WHERE id = $1', [groupId]))[0]?.owner as string | undefined;
      if (owner !== undefined) await this.checkQuota(q, 'invitations', owner, 1, quotas.invitations);
      if (userId === null) return;
      const already = await q(`SELECT 1 FROM group_invites WHERE group_id = $1 AND user_id = $2
        UNION ALL SELECT 1 FROM group_members WHERE group_id = $1 AND user_id = $2`, [groupId, userId]);
      if (already.length > 0) return;
      await this.checkQuota(q, 'inbox', userId, 1, quotas.inbox);
      if (quotas.perSender !== undefined && owner !== undefined) {
        const fromOwner = (await q(`SELECT count(*)::int AS n FROM group_invites i JOIN groups g ON g.id = i.group_id
          WHERE i.user_id = $1 AND g.owner = $2`, [userId, owner]))[0].n as number;
        if (fromOwner + 1 > quotas.perSender) throw new QuotaExceededError('inbox', fromOwner, quotas.perSender, 1);
      }
      await q(insert, [groupId, userId, Date.now()]);
    });
  }

  async invitationsOf(userId: string): Promise<Group[]> {
    return (await this.rows(`SELECT g.id, g.name, g.owner FROM group_invites i JOIN groups g ON g.id = i.group_id
      WHERE i.user_id = $1 ORDER BY g.name COLLATE "C"`, [userId])) as unknown as Group[];
  }

  async acceptInvitation(groupId: string, userId: string): Promise<boolean> {
    return this.tx(async (q) => {
      if ((await q('DELETE FROM group_invites WHERE group_id = $1 AND user_id = $2 RETURNING 1', [groupId, userId])).length === 0) return false;
      await q('INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [groupId, userId]);
      return true;
    });
  }

  async declineInvitation(groupId: string, userId: string): Promise<boolean> {
    return (await this.rows('DELETE FROM group_invites WHERE group_id = $1 AND user_id = $2 RETURNING 1', [groupId, userId])).length > 0;
  }

  async expireInvitations(createdBefore: number): Promise<number> {
    return (await this.rows('DELETE FROM group_invites WHERE created_at < $1 RETURNING 1', [createdBefore])).length;
  }

  async removeGroupMember(groupId: string, userId: string): Promise<boolean> {
    return (await this.rows('DELETE FROM group_members WHERE group_id = $1 AND user_id = $2 RETURNING 1', [groupId, userId])).length > 0;
  }

  async deleteGroup(groupId: string): Promise<void> {
    await this.tx(async (q) => {
      for (const sql of ['DELETE FROM group_invites WHERE group_id = $1','UPDATE endpoints SET group_id = NULL WHERE group_id = $1', 'UPDATE functions SET group_id = NULL WHERE group_id = $1',
        'DELETE FROM group_members WHERE group_id = $1', 'DELETE FROM groups WHERE id = $1']) await q(sql, [groupId]);
    });
  }

  // ---- groups --------------------------------------------------------------------------------------------

  async createGroup(name: string, owner: string, maxPerOwner?: number): Promise<Group> {
    const group: Group = { id: randomUUID(), name, owner };
    const insert = 'INSERT INTO groups (id, name, owner) VALUES ($1, $2, $3)';
    if (maxPerOwner === undefined) await this.rows(insert, [group.id, name, owner]);
    else {
      await this.tx(async (q) => {
        await this.checkQuota(q, 'groups', owner, 1, maxPerOwner);
        await q(insert, [group.id, name, owner]);
      });
    }
    return group;
  }

  async group(ref: string): Promise<Group | undefined> {
    return (await this.row('SELECT id, name, owner FROM groups WHERE id = $1 OR name = $1', [ref])) as Group | undefined;
  }

  async addGroupMember(groupId: string, userId: string): Promise<void> {
    await this.rows('INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [groupId, userId]);
  }

  async isGroupMember(groupId: string, userId: string): Promise<boolean> {
    return (await this.named('is-member', [groupId, userId])).length > 0;
  }

  async groupsOf(userId: string): Promise<Array<Group & { members: string[] }>> {
    // COLLATE "C": names sort by code point, as SQLite sorts them.
    const rows = await this.rows(`SELECT g.id, g.name, g.owner,
        ARRAY(SELECT u.name FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = g.id ORDER BY u.name COLLATE "C") AS members
      FROM groups g WHERE g.owner = $1 OR EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id AND m.user_id = $1)
      ORDER BY g.name COLLATE "C"`, [userId]);
    return rows.map((r) => ({ id: r.id as string, name: r.name as string, owner: r.owner as string, members: r.members as string[] }));
  }

  // ---- named tokens, quotas per user, usage (migration 8) -------------------------------------------------

  async createApiToken(userId: string, name: string, expiresAt: number | null): Promise<{ token: string; record: ApiToken } | undefined> {
    const token = newToken();
    const record: ApiToken = { id: randomUUID(), userId, name, createdAt: Date.now(), expiresAt };
    const r = await this.rows(`INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
      ON CONFLICT DO NOTHING RETURNING id`, [record.id, userId, name, hashToken(token), record.createdAt, expiresAt]);
    return r.length === 1 ? { token, record } : undefined;
  }

  async apiTokens(userId: string): Promise<ApiToken[]> {
    return (await this.rows('SELECT id, user_id, name, created_at, expires_at FROM api_tokens WHERE user_id = $1 ORDER BY name COLLATE "C"', [userId])).map(toApiToken);
  }

  async revokeApiToken(userId: string, name: string): Promise<boolean> {
    return (await this.rows(SQL.revokeApiToken, [userId, name])).length > 0;
  }

  async quotaOverrides(userId: string): Promise<QuotaOverrides> {
    return toOverrides(await this.row('SELECT * FROM user_quotas WHERE user_id = $1', [userId]));
  }

  async setQuotaOverrides(userId: string, quotas: Partial<Record<QuotaKey, number | null>>): Promise<void> {
    const keys = (Object.keys(quotas) as QuotaKey[]).filter((k) => quotas[k] !== undefined);
    if (keys.length === 0) return;
    const columns = keys.map((k) => QUOTA_COLUMNS[k]);
    await this.rows(`INSERT INTO user_quotas (user_id, ${columns.join(', ')}) VALUES ($1, ${columns.map((_, i) => `$${i + 2}`).join(', ')})
      ON CONFLICT (user_id) DO UPDATE SET ${columns.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`, [userId, ...keys.map((k) => quotas[k])]);
  }

  async resultBytesOf(userId: string): Promise<number> {
    return Number((await this.named('result-bytes-of', [userId]))[0]?.result_bytes ?? 0);
  }

  async usage(userId: string): Promise<Usage> {
    const c = (await this.row(`SELECT ${USAGE_COUNTS}, (SELECT COALESCE(MAX(result_bytes), 0) FROM user_usage WHERE user_id = $1) AS result_bytes`, [userId]))!;
    return toUsage(c, Number(c.result_bytes));
  }
}
