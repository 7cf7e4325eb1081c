import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chooseImagesToFree, chooseImagesToRemove, removableImages } from '../../../agent/images/image-gc.js';
import type { ImageRecord } from '../../../agent/images/image-records.js';

const MiB = 1024 * 1024;
const rec = (ref: string, imageId: string, pulledAt: number, lastUsedAt: number | null): ImageRecord => ({ ref, imageId, pulledAt, lastUsedAt });
const watermarks = { highPercent: 80, lowPercent: 60 };
/** A 1000 MiB disk with `used` MiB used. */
const disk = (used: number): { path: string; totalBytes: number; availableBytes: number; usedBytes: number } => ({ path: '/d', totalBytes: 1000 * MiB, availableBytes: (1000 - used) * MiB, usedBytes: used * MiB });

const records = [
  rec('app:1', 'id1', 100, 1000), // used long ago
  rec('app:2', 'id2', 200, 5000), // used recently
  rec('app:3', 'id3', 300, null), // pulled, never used: ordered by its pull
  rec('db:1', 'id4', 50, 2000),
];
const sizes = new Map([['id1', 100 * MiB], ['id2', 100 * MiB], ['id3', 100 * MiB], ['id4', 100 * MiB]]);

describe('chooseImagesToRemove', () => {
  test('nothing at or below the high watermark', () => {
    assert.deepEqual(chooseImagesToRemove(records, new Set(), new Set(), disk(800), watermarks, sizes), []);
  });

  test('above it: least recently used first, down to the low watermark', () => {
    const chosen = chooseImagesToRemove(records, new Set(), new Set(), disk(850), watermarks, sizes);
    // 850 → 750 (id3, pulled at 300) → 650 (id1, used at 1000) → 550 (id4, used at 2000) ≤ 600
    assert.deepEqual(chosen.map((r) => r.imageId), ['id3', 'id1', 'id4']);
  });

  test('never an image in use or a protected one', () => {
    const chosen = chooseImagesToRemove(records, new Set(['id3']), new Set(['id1', 'id4']), disk(850), watermarks, sizes);
    assert.deepEqual(chosen.map((r) => r.imageId), ['id2']);
  });

  test('never an image the agent did not pull: only records are candidates', () => {
    const chosen = chooseImagesToRemove([], new Set(), new Set(), disk(990), watermarks, sizes);
    assert.deepEqual(chosen, []);
  });

  test('several references to one image go together, ordered by the latest use of any', () => {
    const two = [rec('a:1', 'x', 10, 100), rec('a:latest', 'x', 10, 900), rec('b:1', 'y', 10, 500)];
    const chosen = removableImages(two, new Set(), new Set(), new Map());
    assert.deepEqual(chosen.map((r) => [r.imageId, r.refs, r.lastUsedAt]), [['y', ['b:1'], 500], ['x', ['a:1', 'a:latest'], 900]]);
  });
});

describe('chooseImagesToFree', () => {
  test('LRU order until the bytes asked for are expected free', () => {
    assert.deepEqual(chooseImagesToFree(records, new Set(), new Set(), 150 * MiB, sizes).map((r) => r.imageId), ['id3', 'id1']);
    assert.deepEqual(chooseImagesToFree(records, new Set(), new Set(), 0, sizes), []);
  });
});
