/**
 * Every test of service.test.ts (and service-fast-path.test.ts) again, with the service's state in PostgreSQL (the test server of
 * test/cluster/start-postgres.sh, a fresh database per service home).
 */
import { test } from 'node:test';
import { postgresBackend } from '../helpers/store-backends.js';

if (postgresBackend.skip) {
  test('service tests on PostgreSQL', { skip: postgresBackend.skip }, () => {});
} else {
  process.env.FUNCX_TEST_STORE = 'postgres';
  await import('./service.test.js');
  await import('./service-fast-path.test.js');
}
