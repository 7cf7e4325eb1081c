import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestImages } from '../support/test-docker.js';
import type { DeploymentWorld, WorldDevice } from '../support/deployment-world.js';
import { publications, startRolloutWorld, untilRunning, storedRollout, untilStatus } from '../support/rollout-status.js';
import { waitFor } from '../support/wait-for.js';

// `serve` killed in the middle of a rollout, end to end with the shipped
// bundles: the rollout's state is in the fleet database and the devices'
// reports come back to the restarted `serve`, which finishes the rollout
// without giving any device the same revision twice. Killed twice: once while
// the canary applies the revision (its reports come after the restart), once
// while a device bakes (its last report went down with the embedded broker's
// retained messages).
let world: DeploymentWorld;
let images: TestImages;
let devices: WorldDevice[] = [];

before(async () => {
  ({ world, images, devices } = await startRolloutWorld('tsunagu-rollout-restart-', ['--waves', '1,2,100%', '--bake', '5s', '--max-failures', '0', '--wave-deadline', '60s']));
});

after(async () => {
  await world?.close();
});

test('serve killed (SIGKILL) mid-rollout and restarted finishes the rollout, each device given the new revision once', async () => {
  await world.ok('deployment', 'update', 'web', world.composeFile({ services: { web: world.service(images.busybox2) } }));
  // Killed once the canary has been given revision 2: its wave is then neither passed nor judged.
  const canaryPublished = await world.serve!.waitForLog((l) => l.msg === 'published a desired state' && Array.isArray(l.carried) && l.carried.includes('web@2'), 30_000);
  await world.stopServe('SIGKILL');
  const midway = await untilStatus(world, 'web', 'the stored rollout at wave 1', (s) => s.rollout?.toRevision === 2);
  assert.deepEqual([midway.rollout!.phase, midway.rollout!.wave], ['running', 1]);

  await world.startServe();
  // The second wave's device passed its probation and bakes: kill again.
  const baking = await waitFor('a device of wave 2 baking', () => {
    const members = Object.entries(storedRollout(world, 'web')?.members ?? {});
    return members.find(([, m]) => m.wave === 1 && m.verdict === 'baking')?.[0];
  }, 90_000, { intervalMs: 100, detail: () => storedRollout(world, 'web') });
  await world.stopServe('SIGKILL');
  await world.startServe();
  const done = await untilStatus(world, 'web', 'revision 2 rolled out after the restart', (s) => s.rollout?.phase === 'done', 60_000);
  assert.deepEqual([done.rollout!.fromRevision, done.rollout!.toRevision, done.rollout!.counts.healthy], [1, 2, 3]);
  assert.deepEqual(done.devices.map((d) => d.revision), [2, 2, 2]);
  await untilRunning(world, devices, { web: images.busybox2 });

  const all = publications(world);
  for (const d of devices) {
    const own = all.filter((p) => p.deviceId === d.deviceId);
    assert.deepEqual(own.map((p) => p.carried.join(',')), ['web@1', 'web@2'], `${d.name}: each revision published once`);
    assert.ok(own[1]!.version > own[0]!.version, `${d.name}: versions only grow`);
  }
  assert.ok(all.some((p) => p.deviceId === canaryPublished.deviceId && p.carried.includes('web@2')), 'the canary\'s publication before the kill is in the audit log');
  assert.ok(devices.some((d) => d.deviceId === baking), 'the device baking at the second kill is one of ours');
});
