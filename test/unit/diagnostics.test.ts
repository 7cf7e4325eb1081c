import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { countByKind, heapFigures, totalListeners } from '../../agent/diagnostics/diagnostics.js';

test('resources are counted by kind', () => {
  assert.deepEqual(countByKind(['TCPWrap', 'Timeout', 'TCPWrap']), { TCPWrap: 2, Timeout: 1 });
  assert.deepEqual(countByKind([]), {});
});

test('listeners are summed over every event; no emitter counts none', () => {
  const e = new EventEmitter();
  e.on('a', () => undefined);
  e.on('a', () => undefined);
  e.once('b', () => undefined);
  assert.equal(totalListeners(e), 3);
  assert.equal(totalListeners(undefined), 0);
});

test('the heap is measured as found, and again after a full collection when one can be forced', () => {
  let heap = 30;
  assert.deepEqual(heapFigures(() => heap, undefined), { heapUsedBytes: 30 });
  assert.deepEqual(heapFigures(() => heap, () => { heap = 12; }), { heapUsedBytes: 30, heapLiveBytes: 12 });
});
