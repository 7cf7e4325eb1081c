import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { admit } from '../../agent/admission/admission.js';
import { usedPercent } from '../../agent/images/disk-fit.js';
import { parseDesiredState } from '../../protocol/compose/compose-schema.js';
import { DockerRuntime } from '../../agent/supervisor/docker-runtime.js';
import { isTsunaguError } from '../../protocol/errors.js';
import { diskConfig, MiB, startDiskWorld, type DiskWorld } from '../support/disk-kit.js';
import { busyboxRootfs, pushImage, randomLayer, type WrittenImage } from '../support/image-writer.js';
import { dockerTestEnv, TEST_LABEL } from '../support/supervisor-harness.js';

// Image garbage collection and disk admission against a real engine whose
// data root is a small ext4 filesystem made for this file.

const env = dockerTestEnv();
const repo = `tsunagu-test-disk/gc-${randomBytes(3).toString('hex')}`;
let kit: DiskWorld;

before(async () => {
  kit = await startDiskWorld('tsunagu-disk-gc-', 256);
});

after(async () => {
  await kit?.close();
});

test('above the high watermark, unused images the agent pulled go, least recently used first, down to the low watermark', async () => {
  const base = busyboxRootfs();
  const images: WrittenImage[] = [];
  for (const n of [1, 2, 3, 4, 5, 6]) images.push(await pushImage(env.registry, repo, `gc${n}`, [base, randomLayer(12 * MiB)]));
  const [g1, g2, g3, g4, g5] = images as [WrittenImage, WrittenImage, WrittenImage, WrittenImage, WrittenImage];
  const runtime = new DockerRuntime({ socketPath: kit.engine.socket });
  for (const i of images) await runtime.pullImage(i.ref, {});
  // g1 has a container (not even running); g2 is the desired state's; the sixth was pulled by someone else.
  await kit.engine.docker.createContainer({ Image: g1.ref, Labels: { [TEST_LABEL]: 'disk' }, HostConfig: { NetworkMode: 'none' } });

  const stateDir = mkdtempSync(join(kit.work, 'state-'));
  const recorder = kit.housekeeping(diskConfig({}), [], stateDir);
  const hour = 3600_000;
  for (const [n, i] of [g1, g2, g3, g4, g5].entries()) {
    const id = await recorder.engine.imageId(i.ref);
    assert.ok(id, 'id');
    recorder.records.notePulled(i.ref, id, 1_000_000);
    recorder.records.noteUsed(id, 1_000_000 + (n + 1) * 2 * hour);
  }
  recorder.records.save();

  const disk = await recorder.gauge.read();
  const used = usedPercent(disk);
  const onePercent = (12 * MiB / (disk.usedBytes + disk.availableBytes)) * 100;
  // Two images must go to reach the low watermark: g3 and g4 (g1 is in use, g2 protected, the sixth not ours); g5, used last, stays.
  const watermarks = { highWatermarkPercent: used - 1, lowWatermarkPercent: used - 1.5 * onePercent };
  const events: Record<string, unknown>[] = [];
  const hk = kit.housekeeping(diskConfig({ gc: watermarks }), events, stateDir);
  hk.attach({ desiredImages: () => [g2.ref], state: () => ({ version: null, status: 'applying', services: [], error: null }) });

  const summary = await hk.collector.collect('test');
  assert.ok(summary, 'summary');
  assert.equal(summary.removed, 2, JSON.stringify(summary));
  assert.ok(summary.usedPercentAfter <= watermarks.lowWatermarkPercent, JSON.stringify({ summary, watermarks }));
  assert.deepEqual(events.filter((e) => e.type === 'image-removed').map((e) => e.image), [g3.ref, g4.ref]);
  assert.deepEqual(events.filter((e) => e.type === 'gc').map((e) => [e.removed, e.trigger]), [[2, 'test']]);
  assert.deepEqual(await Promise.all(images.map((i) => kit.present(i.ref))), [true, true, false, false, true, true]);
  const file = JSON.parse(readFileSync(join(stateDir, 'images.json'), 'utf8')) as { images: { ref: string }[] };
  assert.deepEqual(file.images.map((r) => r.ref).sort(), [g1.ref, g2.ref, g5.ref].sort());
  assert.deepEqual([hk.report().lastGc?.removed, hk.report().lastGc?.short], [2, false]);
  // Below the high watermark now: nothing more goes.
  assert.equal(await hk.collector.collect('test'), null);
});

test('admission: images that cannot fit above the reserve are refused with the sizes named; what fits passes; images on the engine need nothing', async () => {
  const base = busyboxRootfs();
  const big = await pushImage(env.registry, repo, 'big', [base, randomLayer(30 * MiB)]);
  const small = await pushImage(env.registry, repo, 'small', [base, randomLayer(2 * MiB)]);
  const room = 15 * MiB;
  const hk = kit.housekeeping(diskConfig({ reserveBytes: (await kit.available()) - room, unpackFactor: 1 }), []);
  await assert.rejects(admit(parseDesiredState({ services: { web: { image: big.ref }, cache: { image: small.ref } } }), hk.admission, { firstTime: true }), (e) => {
    assert.ok(isTsunaguError(e, 'ADMISSION_REFUSED'), "isTsunaguError(e, 'ADMISSION_REFUSED')");
    const services = e.details?.services as Record<string, string>;
    assert.deepEqual(Object.keys(services).sort(), ['cache', 'web']);
    assert.match(services.web ?? '', new RegExp(`^image ${big.ref} needs about 30\\.\\d MiB of disk; all pulls of this desired state need about 32\\.\\d MiB, at most 1[45]\\.\\d MiB can be free on ${kit.engine.dataRoot} above the reserve`));
    return true;
  });
  await admit(parseDesiredState({ services: { cache: { image: small.ref } } }), hk.admission, { firstTime: true });
  // The reserve is the agent's rule only: the engine itself still has room to pull.
  await new DockerRuntime({ socketPath: kit.engine.socket }).pullImage(big.ref, {});
  await admit(parseDesiredState({ services: { web: { image: big.ref } } }), hk.admission, { firstTime: true });
});
