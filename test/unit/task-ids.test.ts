import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newTaskId } from '../../src/service/task-ids.js';
import { isUuid } from '../../src/service/routes/context.js';

test('task ids are version-7 UUIDs, each later than the one before, and distinct', () => {
  const ids = Array.from({ length: 20_000 }, () => newTaskId()); // more than 4,096 in one millisecond
  for (const id of ids) {
    assert.ok(isUuid(id), id);
    assert.equal(id[14], '7', `${id}: version 7`);
    assert.match(id[19], /[89ab]/, `${id}: RFC 9562 variant`);
  }
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1] < ids[i], `${ids[i - 1]} before ${ids[i]}`);
  assert.equal(new Set(ids).size, ids.length);
});

test('a task id starts with the milliseconds it was made at', () => {
  const before = Date.now();
  const ms = parseInt(newTaskId().replace('-', '').slice(0, 12), 16);
  assert.ok(ms >= before && ms <= Date.now() + 5, `${ms} near ${before}`);
});
