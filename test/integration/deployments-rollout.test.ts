import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestImages } from '../support/test-docker.js';
import type { DeploymentWorld, WorldDevice } from '../support/deployment-world.js';
import { publications, startRolloutWorld, untilRunning, untilStatus } from '../support/rollout-status.js';

// Rollouts that go wrong, end to end with the shipped bundles: a revision
// whose image fails its healthcheck halts at its canary and the canary is put
// back; `abort` puts every device back. Real agents, the test dockerd, the
// local registry; a 2 s bake and the world's 1.5 s probation keep it short.
let world: DeploymentWorld;
let images: TestImages;
let devices: WorldDevice[] = [];

const STRATEGY = ['--waves', '1,100%', '--bake', '2s', '--max-failures', '0', '--on-halt', 'revert', '--wave-deadline', '60s'];

before(async () => {
  ({ world, images, devices } = await startRolloutWorld('tsunagu-rollout-', STRATEGY));
});

after(async () => {
  await world?.close();
});

test('a revision whose healthcheck fails halts at its canary, which is back on the previous revision with its container running; status says why', async () => {
  await world.ok('deployment', 'update', 'web', world.composeFile({ services: { web: world.service(images.unhealthy) } }));
  const status = await untilStatus(world, 'web', 'halted with its canary reverted',
    (s) => s.rollout?.phase === 'halted' && s.rollout.failing.length === 1 && s.rollout.failing[0]!.revision === 1);
  const rollout = status.rollout!;
  assert.deepEqual([rollout.fromRevision, rollout.toRevision, rollout.wave], [1, 2, 1]);
  assert.deepEqual(rollout.failures, { failed: 1, tried: 1, allowed: 0 });
  const failing = rollout.failing[0]!;
  assert.equal(failing.wave, 1);
  assert.equal(failing.timedOut, false);
  assert.equal(failing.reason?.service, 'web');
  assert.equal(failing.reason?.code, 'PROBATION_FAILED');
  assert.equal(failing.reason?.health, 'unhealthy');
  assert.match(failing.reason?.message ?? '', /unhealthy/);

  const canary = devices.find((d) => d.deviceId === failing.deviceId);
  assert.ok(canary !== undefined, `the failing device ${failing.deviceId} is one of ours`);
  const others = devices.filter((d) => d !== canary);

  // The canary was given revision 2 once, then revision 1 again under a newer version; the others never saw revision 2.
  const carried = (id: string): string[] => publications(world).filter((p) => p.deviceId === id).map((p) => p.carried.join(','));
  assert.deepEqual(carried(canary.deviceId), ['web@1', 'web@2', 'web@1']);
  for (const d of others) assert.deepEqual(carried(d.deviceId), ['web@1']);
  const mine = publications(world).filter((p) => p.deviceId === canary.deviceId).map((p) => p.version);
  assert.ok(mine[2]! > mine[1]! && mine[1]! > mine[0]!, `versions only grow: ${mine.join(', ')}`);
  const listed = status.devices.find((d) => d.deviceId === canary.deviceId);
  assert.deepEqual([listed?.revision, listed?.version], [1, mine[2]]);

  // What the engine runs: the previous image, running, on every device.
  await untilRunning(world, devices, { web: images.busybox1 });

  const text = await world.ok('deployment', 'status', 'web');
  assert.match(text, /HALTED at wave 1/);
  assert.match(text, new RegExp(`${failing.deviceId} +wave 1 +web PROBATION_FAILED health unhealthy .*back on revision 1`));
});

test('abort puts every device back on the previous revision, also after the rollout finished', async () => {
  // A fixed revision supersedes the halted rollout and starts from revision 1, the last proven one.
  await world.ok('deployment', 'update', 'web', world.composeFile({ services: { web: world.service(images.busybox2) } }));
  const done = await untilStatus(world, 'web', 'revision 3 rolled out', (s) => s.rollout?.toRevision === 3 && s.rollout.phase === 'done');
  assert.deepEqual([done.rollout!.fromRevision, done.rollout!.counts.healthy], [1, 3]);
  await untilRunning(world, devices, { web: images.busybox2 });

  await world.ok('deployment', 'abort', 'web');
  await untilRunning(world, devices, { web: images.busybox1 });
  const aborted = await untilStatus(world, 'web', 'every device published revision 1 again',
    (s) => s.rollout?.phase === 'aborted' && s.devices.every((d) => d.revision === 1));
  assert.equal(aborted.devices.length, 3);
  for (const d of devices) {
    const own = publications(world).filter((p) => p.deviceId === d.deviceId);
    assert.deepEqual(own.at(-1)?.carried, ['web@1'], `${d.name} was last given revision 1`);
    assert.deepEqual(own.filter((p) => p.carried.includes('web@3')).length, 1, `${d.name} was given revision 3 once`);
  }
});
