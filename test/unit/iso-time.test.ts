import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isoTimeUtc } from '../../common/iso-time.js';

test('isoTimeUtc writes what toISOString writes, for every representable time', () => {
  for (const ms of [0, -1, 1, 951782400000, 1767225600000, 253402300799999, 253402300800000, -62167219200000, -62167219200001, 8.64e15, -8.64e15]) {
    assert.equal(isoTimeUtc(ms), new Date(ms).toISOString(), String(ms));
  }
  fc.assert(fc.property(fc.integer({ min: -8.64e15, max: 8.64e15 }), (ms) => isoTimeUtc(ms) === new Date(ms).toISOString()));
});
