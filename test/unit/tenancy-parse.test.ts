/**
 * What people type for token expiry and quota sizes: `30d`, `10GiB`; anything else is refused by name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration } from '../../src/service/durations.js';
import { parseBytes } from '../../src/cli/service-tenancy.js';
import { quotasFor, resolveQuotas } from '../../src/service/limits.js';

test('durations: a whole number and a unit', () => {
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('15m'), 900_000);
  assert.equal(parseDuration('12h'), 43_200_000);
  assert.equal(parseDuration('30d'), 30 * 86_400_000);
  assert.equal(parseDuration('2w'), 14 * 86_400_000);
  for (const bad of ['30', 'd', '0d', '1.5h', '-1d', '30 days', '']) assert.throws(() => parseDuration(bad, '--expires'), /--expires must be a whole number > 0 and a unit/, bad);
});

test('sizes: bytes or KiB, MiB, GiB, TiB', () => {
  assert.equal(parseBytes('1000'), 1000);
  assert.equal(parseBytes('5KiB'), 5120);
  assert.equal(parseBytes('512 MiB'), 512 * 1024 ** 2);
  assert.equal(parseBytes('10GiB'), 10 * 1024 ** 3);
  for (const bad of ['10GB', 'x', '-1', '1.5GiB']) assert.throws(() => parseBytes(bad), /expected bytes/, bad);
});

test("a user's own quotas replace the service's one by one", () => {
  const service = resolveQuotas({ tasks: 10 });
  assert.deepEqual(quotasFor(service, { functions: 3 }), { ...service, functions: 3 });
  assert.deepEqual(quotasFor(service, {}), service);
  assert.equal(service.resultBytes, 10 * 1024 ** 3);
  assert.throws(() => resolveQuotas({ resultBytes: -1 }), /quotas.resultBytes must be a whole number ≥ 0/);
});
