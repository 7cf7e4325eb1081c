import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as z from 'zod';
import { isTsunaguError } from '../../protocol/errors.js';
import { parseJsonBytes, parseJsonWith } from '../../protocol/json.js';

test('deep nesting is refused before parsing', () => {
  const deep = '['.repeat(100) + ']'.repeat(100);
  assert.throws(() => parseJsonBytes(deep), (e) => isTsunaguError(e, 'TOO_DEEP'));
});

test('brackets inside strings do not count as nesting', () => {
  const value = parseJsonBytes(JSON.stringify({ a: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["' }));
  assert.deepEqual(value, { a: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["' });
});

test('oversized input is refused', () => {
  assert.throws(() => parseJsonBytes('1'.repeat(100), { maxBytes: 10, maxDepth: 4 }), (e) => isTsunaguError(e, 'TOO_LARGE'));
});

test('schema failure names the field', () => {
  assert.throws(
    () => parseJsonWith(z.object({ a: z.object({ b: z.number() }) }), '{"a":{"b":"x"}}', 'thing'),
    (e) => isTsunaguError(e, 'SCHEMA') && e.message.includes('a.b'),
  );
});
