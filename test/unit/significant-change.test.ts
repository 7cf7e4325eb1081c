import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_CHANGE_THRESHOLDS, isSignificantChange, significantChanges } from '../../agent/resources/significant-change.js';
import type { MetricsReport } from '../../protocol/reports.js';

function report(over: Partial<MetricsReport> = {}): MetricsReport {
  return {
    v: 1,
    at: 0,
    uptimeSec: 10,
    cpu: { load: 0.2, loadAvg: [0.2, 0.2, 0.2] },
    memory: { totalBytes: 1000, usedBytes: 500, availableBytes: 500 },
    filesystems: [{ mount: '/', sizeBytes: 1000, usedBytes: 500, availableBytes: 500 }],
    temperatureC: 50,
    network: [],
    ...over,
  };
}

test('the first report is always significant; an identical one never is', () => {
  assert.equal(isSignificantChange(undefined, report()), true);
  assert.equal(isSignificantChange(report(), report()), false);
  assert.deepEqual(significantChanges(report(), report({ at: 99, uptimeSec: 99 })), []);
});

test('small moves below every threshold are not significant', () => {
  const cur = report({
    cpu: { load: 0.6, loadAvg: [1, 1, 1] },
    memory: { totalBytes: 1000, usedBytes: 600, availableBytes: 400 },
    filesystems: [{ mount: '/', sizeBytes: 1000, usedBytes: 540, availableBytes: 460 }],
    temperatureC: 59,
    network: [{ name: 'eth0', rxBytesPerSec: 1e6, txBytesPerSec: 0 }],
  });
  assert.deepEqual(significantChanges(report(), cur), []);
});

test('deltas at the threshold are significant', () => {
  const t = DEFAULT_CHANGE_THRESHOLDS;
  assert.deepEqual(significantChanges(report(), report({ cpu: { load: 0.2 + t.cpuLoadDelta, loadAvg: [0, 0, 0] } })), ['cpu.load']);
  assert.deepEqual(significantChanges(report(), report({ memory: { totalBytes: 1000, usedBytes: 650, availableBytes: 350 } })), ['memory.delta']);
  assert.deepEqual(significantChanges(report(), report({ filesystems: [{ mount: '/', sizeBytes: 1000, usedBytes: 550, availableBytes: 450 }] })), ['fs.delta:/']);
  assert.deepEqual(significantChanges(report(), report({ temperatureC: 40 })), ['temperature.delta']);
});

test('slow drift across a level is significant in both directions', () => {
  const fs = (used: number) => [{ mount: '/data', sizeBytes: 1000, usedBytes: used, availableBytes: 1000 - used }];
  assert.deepEqual(significantChanges(report({ filesystems: fs(899) }), report({ filesystems: fs(901) })), ['fs.level:/data']);
  assert.deepEqual(significantChanges(report({ filesystems: fs(901) }), report({ filesystems: fs(899) })), ['fs.level:/data']);
  assert.deepEqual(significantChanges(report({ filesystems: fs(880) }), report({ filesystems: fs(895) })), []);
  assert.deepEqual(significantChanges(report({ temperatureC: 78 }), report({ temperatureC: 81 })), ['temperature.level']);
  const mem = (used: number) => ({ totalBytes: 1000, usedBytes: used, availableBytes: 1000 - used });
  assert.deepEqual(significantChanges(report({ memory: mem(880) }), report({ memory: mem(910) })), ['memory.level']);
});

test('filesystems appearing or disappearing are significant; a lost temperature is not', () => {
  const usb = { mount: '/media/usb', sizeBytes: 10, usedBytes: 1, availableBytes: 9 };
  const base = report();
  assert.deepEqual(significantChanges(base, report({ filesystems: [...base.filesystems, usb] })), ['fs.added:/media/usb']);
  assert.deepEqual(significantChanges(report({ filesystems: [...base.filesystems, usb] }), base), ['fs.removed:/media/usb']);
  const { temperatureC: _, ...noTemp } = base;
  assert.deepEqual(significantChanges(base, noTemp), []);
});

test('thresholds are the caller\'s to choose', () => {
  const strict = { ...DEFAULT_CHANGE_THRESHOLDS, cpuLoadDelta: 0.05 };
  assert.deepEqual(significantChanges(report(), report({ cpu: { load: 0.26, loadAvg: [0, 0, 0] } }), strict), ['cpu.load']);
});
