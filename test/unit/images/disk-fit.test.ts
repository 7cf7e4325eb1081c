import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fitPull, usedPercent } from '../../../agent/images/disk-fit.js';

const MiB = 1024 * 1024;

test('used percent is used over used plus available, as df says it', () => {
  assert.equal(usedPercent({ path: '/', totalBytes: 100, availableBytes: 20, usedBytes: 75 }), 75 / 95 * 100);
  assert.equal(usedPercent({ path: '/', totalBytes: 0, availableBytes: 0, usedBytes: 0 }), 0);
});

test('a pull that fits above the reserve goes', () => {
  assert.deepEqual(fitPull({ roomBytes: 100 * MiB, neededBytes: 100 * MiB, collectableBytes: 0 }), { kind: 'fits' });
});

test('a pull that fits once unused images go collects first', () => {
  const fit = fitPull({ roomBytes: 10 * MiB, neededBytes: 50 * MiB, collectableBytes: 40 * MiB });
  assert.equal(fit.kind, 'collect-first');
});

test('a pull that fits only without the old version switches to kill-then-download, and says why', () => {
  const fit = fitPull({ roomBytes: 10 * MiB, neededBytes: 50 * MiB, collectableBytes: 5 * MiB, killFirst: { neededBytes: 55 * MiB, reclaimBytes: 40 * MiB } });
  assert.equal(fit.kind, 'kill-first');
  assert.match(fit.kind === 'kill-first' ? fit.reason : '', /needs about 50\.0 MiB, 15\.0 MiB can be free .*frees about 40\.0 MiB: switching to kill-then-download/);
});

test('a pull that does not fit even without the old version is short', () => {
  const fit = fitPull({ roomBytes: 10 * MiB, neededBytes: 80 * MiB, collectableBytes: 5 * MiB, killFirst: { neededBytes: 85 * MiB, reclaimBytes: 40 * MiB } });
  assert.deepEqual(fit, { kind: 'short', reason: 'needs about 80.0 MiB, at most 55.0 MiB can be free above the reserve even without the old version' });
});

test('a disk already inside the reserve has negative room: even a small pull is short', () => {
  const fit = fitPull({ roomBytes: -5 * MiB, neededBytes: 1 * MiB, collectableBytes: 0 });
  assert.deepEqual(fit, { kind: 'short', reason: 'needs about 1.0 MiB, at most 0 B can be free above the reserve' });
});
