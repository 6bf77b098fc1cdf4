/**
 * The store back ends the store and API tests run against: each makes a fresh, empty database and can
 * open it as often as a test likes (to test reopening).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '../../src/service/store/index.js';

export interface TestDatabase {
  /** What `funcx-service start --database` takes: a file path or a postgres:// URL. */
  location: string;
  open(): Promise<Store>;
  drop(): Promise<void>;
}

export interface StoreBackend {
  name: 'sqlite' | 'postgres';
  /** A reason to skip, or false. */
  skip: string | false;
  create(): Promise<TestDatabase>;
}

export function tempSqlite(): { dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'funcx-store-'));
  return { dir, path: join(dir, 'service.db') };
}

export const sqliteBackend: StoreBackend = {
  name: 'sqlite',
  skip: false,
  async create() {
    const { dir, path } = tempSqlite();
    return { location: path, open: () => openStore(path), drop: async () => rmSync(dir, { recursive: true, force: true }) };
  },
};

export const STORE_BACKENDS: readonly StoreBackend[] = [sqliteBackend];
