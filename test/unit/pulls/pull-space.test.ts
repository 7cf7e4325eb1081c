import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EngineImage } from '../../../agent/images/docker-images.js';
import { pullSpace, type PullSpaceInputs } from '../../../agent/pulls/pull-space.js';

const MiB = 1024 * 1024;
const d = (c: string): string => `sha256:${c.repeat(64).slice(0, 64)}`;
const image = (id: string, refs: string[], layers: string[], mib: number): EngineImage => ({ id, refs, layers: layers.map(d), sizeBytes: mib * MiB });

// The device runs app:1 (base + layer 1); app:2 (base + layer 2) replaces it. old:0 is an unused image the agent pulled; foreign:1 one it did not.
const base: Omit<PullSpaceInputs, 'oldRefs'> = {
  pulls: [{ ref: 'app:2', layers: [{ diffId: d('b'), compressedBytes: 5 * MiB }, { diffId: d('2'), compressedBytes: 40 * MiB }] }],
  images: [image('i1', ['app:1'], ['b', '1'], 45), image('i0', ['old:0'], ['z'], 30), image('if', ['foreign:1'], ['f'], 20)],
  records: [{ ref: 'app:1', imageId: 'i1', pulledAt: 1, lastUsedAt: 5 }, { ref: 'old:0', imageId: 'i0', pulledAt: 1, lastUsedAt: 2 }],
  inUse: new Set(['i1']),
  protectedIds: new Set(['i1']),
  desiredRefs: new Set(['app:2']),
  disk: { path: '/d', totalBytes: 200 * MiB, availableBytes: 60 * MiB, usedBytes: 140 * MiB },
  reserveBytes: 20 * MiB,
  unpackFactor: 1,
};

test('beside the running version: the base layer is on disk; only unused images the agent pulled are collectable', () => {
  const { space, perImage } = pullSpace({ ...base, oldRefs: [] });
  assert.deepEqual(space, { roomBytes: 40 * MiB, neededBytes: 40 * MiB, collectableBytes: 30 * MiB });
  assert.equal(perImage.get('app:2'), 40 * MiB);
});

test('with the old version: removing its image frees it, and its base layer must come again', () => {
  const { space } = pullSpace({ ...base, oldRefs: ['app:1'] });
  assert.deepEqual(space.killFirst, { neededBytes: 45 * MiB, reclaimBytes: 45 * MiB });
});

test('an old image the desired state still names, or one the agent did not pull, is not removed for the update', () => {
  assert.equal(pullSpace({ ...base, oldRefs: ['app:1'], desiredRefs: new Set(['app:2', 'app:1']) }).space.killFirst, undefined);
  assert.equal(pullSpace({ ...base, oldRefs: ['foreign:1'] }).space.killFirst, undefined);
});
