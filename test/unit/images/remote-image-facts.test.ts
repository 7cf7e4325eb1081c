import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ImageReference } from '../../../agent/images/image-reference.js';
import { FACTS_TTL_MS, RemoteImageFactsReader } from '../../../agent/images/remote-image-facts.js';
import { TsunaguError } from '../../../protocol/errors.js';

// The reader's choices over in-memory registry answers; the real registry and engine are in test/integration/image-admission.test.ts.
const d = (c: string): string => `sha256:${c.repeat(64).slice(0, 64)}`;
const INDEX = 'application/vnd.oci.image.index.v1+json';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const documents: Record<string, { mediaType: string; body: unknown }> = {
  multi: { mediaType: INDEX, body: { schemaVersion: 2, manifests: [
    { digest: d('a'), size: 1, platform: { os: 'linux', architecture: 'arm64' } },
    { digest: d('b'), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
  ] } },
  [d('b')]: { mediaType: MANIFEST, body: { schemaVersion: 2, config: { digest: d('c'), size: 9 }, layers: [{ digest: d('l'), size: 4096 }] } },
};

const engineDown = { remotePlatforms: (): Promise<never> => Promise.reject(new TsunaguError('REGISTRY_FAILED', 'engine says no')) };
const engineUp = { remotePlatforms: (): Promise<{ os: string; architecture: string }[]> => Promise.resolve([{ os: 'linux', architecture: 'amd64' }]) };

function reader(now: () => number, o: { down?: boolean; engine?: typeof engineDown | typeof engineUp } = {}): { reader: RemoteImageFactsReader; reads: string[] } {
  const reads: string[] = [];
  const down = o.down ?? false;
  return {
    reads,
    reader: new RemoteImageFactsReader({
      engine: o.engine ?? engineDown,
      registry: {
        manifest: (ref: ImageReference) => {
          reads.push(ref.reference);
          const doc = documents[ref.reference];
          return down || doc === undefined ? Promise.reject(new TsunaguError('REGISTRY_FAILED', 'unreachable')) : Promise.resolve(doc);
        },
        jsonBlob: () => Promise.resolve({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [d('u')] } }),
      },
      device: { os: 'linux', architecture: 'amd64' }, auth: () => undefined, now,
    }),
  };
}

test('an index leads to the manifest of the device\'s platform; the index names the platforms when the engine cannot', async () => {
  const { reader: r } = reader(() => 0);
  const facts = await r.read('reg.example/app:multi');
  assert.deepEqual(facts.layers, [{ diffId: d('u'), compressedBytes: 4096 }]);
  assert.deepEqual(facts.platforms, [{ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'amd64' }]);
  assert.deepEqual(facts.unknown, ['platforms: engine says no']);
});

test('a complete read is reused for a while, an incomplete one never', async () => {
  let now = 0;
  const complete = reader(() => now, { engine: engineUp });
  await complete.reader.read('reg.example/app:multi');
  await complete.reader.read('reg.example/app:multi');
  assert.equal(complete.reads.length, 2, 'index and manifest read once');
  now += FACTS_TTL_MS;
  await complete.reader.read('reg.example/app:multi');
  assert.equal(complete.reads.length, 4);

  const down = reader(() => 0, { down: true });
  const facts = await down.reader.read('reg.example/app:multi');
  assert.deepEqual([facts.layers, facts.platforms], [null, null]);
  await down.reader.read('reg.example/app:multi');
  assert.equal(down.reads.length, 2, 'asked again');
});
