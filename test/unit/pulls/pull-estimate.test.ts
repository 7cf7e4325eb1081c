import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ImageIndex, ImageManifest } from '../../../agent/images/oci-documents.js';
import { documentKind } from '../../../agent/images/oci-documents.js';
import { estimatePulls, pickManifest, reclaimableBytes, remoteLayers, type LocalImageInfo } from '../../../agent/pulls/pull-estimate.js';

const d = (c: string): string => `sha256:${c.repeat(64).slice(0, 64)}`;
const MiB = 1024 * 1024;

describe('reading registry documents', () => {
  const index: ImageIndex = {
    schemaVersion: 2,
    manifests: [
      { digest: d('1'), size: 500, platform: { os: 'linux', architecture: 'amd64' } },
      { digest: d('2'), size: 500, platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
      { digest: d('3'), size: 500, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
      { digest: d('4'), size: 500, platform: { os: 'unknown', architecture: 'unknown' } },
      { digest: d('5'), size: 500 },
    ],
  };
  test('the index entry for the device', () => {
    assert.equal(pickManifest(index, { os: 'linux', architecture: 'amd64' })?.digest, d('1'));
    assert.equal(pickManifest(index, { os: 'linux', architecture: 'arm', variant: 'v7' })?.digest, d('3'));
    assert.equal(pickManifest(index, { os: 'linux', architecture: 's390x' }), undefined);
  });

  test('layers pair with the config diff_ids in order; a count mismatch pairs nothing', () => {
    const manifest: ImageManifest = { schemaVersion: 2, config: { digest: d('c'), size: 10 }, layers: [{ digest: d('a'), size: 100 }, { digest: d('b'), size: 200 }] };
    const config = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [d('e'), d('f')] } };
    assert.deepEqual(remoteLayers(manifest, config), [{ diffId: d('e'), compressedBytes: 100 }, { diffId: d('f'), compressedBytes: 200 }]);
    assert.deepEqual(remoteLayers(manifest, { ...config, rootfs: { type: 'layers', diff_ids: [d('e')] } }), [{ diffId: null, compressedBytes: 100 }, { diffId: null, compressedBytes: 200 }]);
  });

  test('document kind by media type, else by shape', () => {
    assert.equal(documentKind('application/vnd.oci.image.index.v1+json', {}), 'index');
    assert.equal(documentKind('application/vnd.docker.distribution.manifest.v2+json; charset=utf-8', {}), 'manifest');
    assert.equal(documentKind(undefined, { manifests: [] }), 'index');
    assert.equal(documentKind('application/json', { config: {}, layers: [] }), 'manifest');
    assert.equal(documentKind('application/vnd.docker.distribution.manifest.v1+prettyjws', { fsLayers: [] }), 'other');
  });
});

describe('estimatePulls', () => {
  test('layers already on disk cost nothing; the rest costs its compressed size times the factor', () => {
    const r = estimatePulls([{ ref: 'a', layers: [{ diffId: d('1'), compressedBytes: 10 * MiB }, { diffId: d('2'), compressedBytes: 4 * MiB }] }], new Set([d('1')]), 2.5);
    assert.equal(r.totalBytes, 10 * MiB);
    assert.equal(r.perImage.get('a'), 10 * MiB);
  });

  test('a layer two images share is counted once, for the first', () => {
    const shared = { diffId: d('s'), compressedBytes: 8 * MiB };
    const r = estimatePulls([
      { ref: 'a', layers: [shared, { diffId: d('a'), compressedBytes: 1 * MiB }] },
      { ref: 'b', layers: [shared, { diffId: d('b'), compressedBytes: 2 * MiB }] },
    ], new Set(), 1);
    assert.deepEqual([...r.perImage], [['a', 9 * MiB], ['b', 2 * MiB]]);
    assert.equal(r.totalBytes, 11 * MiB);
  });

  test('a layer without a known digest always counts', () => {
    const r = estimatePulls([{ ref: 'a', layers: [{ diffId: null, compressedBytes: 100 }, { diffId: null, compressedBytes: 100 }] }], new Set(), 1.5);
    assert.equal(r.totalBytes, 300);
  });
});

describe('reclaimableBytes', () => {
  const img = (id: string, layers: string[], sizeBytes: number): LocalImageInfo => ({ id, layers: layers.map(d), sizeBytes });
  const base = img('base', ['1'], 5 * MiB);
  const app1 = img('app1', ['1', '2'], 25 * MiB);
  const app2 = img('app2', ['1', '3'], 30 * MiB);
  const other = img('other', ['9'], 7 * MiB);

  test('an image sharing nothing with what stays frees its whole size', () => {
    assert.equal(reclaimableBytes([other], [base, app1]), 7 * MiB);
  });
  test('an image whose base stays frees what it adds on top', () => {
    assert.equal(reclaimableBytes([app1], [base, other]), 20 * MiB);
  });
  test('a share that cannot be told counts as nothing', () => {
    // app2 shares layer 1 with app1, which stays, but app1 is not its base.
    assert.equal(reclaimableBytes([app2], [app1]), 0);
  });
  test('two removed images on one base: the second counts what it adds on top of the first', () => {
    assert.equal(reclaimableBytes([base, app1], []), 25 * MiB);
  });
  test('with layer sizes from the engine\'s history: the layers nothing that stays holds, each once', () => {
    const sized = (i: LocalImageInfo, sizes: number[]): LocalImageInfo => ({ ...i, layerSizes: sizes.map((n) => n * MiB) });
    // Siblings on a base that is no image of its own: the share is now known.
    assert.equal(reclaimableBytes([sized(app2, [5, 25])], [sized(app1, [5, 20])]), 25 * MiB);
    assert.equal(reclaimableBytes([sized(app1, [5, 20]), sized(app2, [5, 25])], [other]), 50 * MiB);
    // A size known from another image counts for an image whose own history is ambiguous.
    assert.equal(reclaimableBytes([{ ...app2, layerSizes: null }], [sized(app1, [5, 20]), { ...img('x', ['3'], 25), layerSizes: [25 * MiB] }]), 0);
  });
});
