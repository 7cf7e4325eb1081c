import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { dockerTestEnv, type TestImages } from '../support/test-docker.js';
import { DeploymentWorld, type WorldDevice } from '../support/deployment-world.js';
import { waitFor } from '../support/wait-for.js';

// Deployments end to end with the shipped bundles: `serve` with its embedded
// broker reconciles deployments against devices started from the bootstrap
// file alone, on the test dockerd pulling from the local registry.
let world: DeploymentWorld;
let images: TestImages;
let devices: WorldDevice[] = [];

/** Wait until every given device runs exactly these services (name → image). */
async function untilRunning(targets: readonly WorldDevice[], services: Record<string, string>, timeoutMs = 90_000): Promise<void> {
  for (const d of targets) {
    await waitFor(`${d.name} running ${JSON.stringify(services)}`, async () => {
      const now = await world.running(d);
      return JSON.stringify(now) === JSON.stringify(services);
    }, timeoutMs, { intervalMs: 300, detail: () => d.agent.lines.slice(-5) });
  }
}

before(async () => {
  images = dockerTestEnv().images;
  world = await DeploymentWorld.start();
});

after(async () => {
  await world?.close();
});

test('a deployment created before any device exists runs on three devices enrolled from their bootstrap file alone', async () => {
  await world.ok('deployment', 'create', 'base', '--selector', 'os=linux', '--waves', '1,100%', '--bake', '1s', '--max-failures', '0',
    world.composeFile({ services: { base: world.service(images.busybox1) } }));
  devices = await Promise.all(['a', 'b', 'c'].map((n) => world.addDevice(n)));
  await untilRunning(devices, { base: images.busybox1 });
  const status = JSON.parse(await world.ok('deployment', 'status', 'base', '--json')) as { devices: { deviceId: string; revision: number | null }[] };
  assert.deepEqual(status.devices.map((d) => d.revision), [1, 1, 1]);
});

test('a second deployment layers its services on top; a service both claim goes to the higher priority, shown in status', async () => {
  await world.ok('deployment', 'create', 'extra', '--selector', 'os=linux', '--priority', '10',
    world.composeFile({ services: { extra: world.service(images.busybox1), base: world.service(images.busybox2) } }));
  await untilRunning(devices, { base: images.busybox2, extra: images.busybox1 });
  const status = JSON.parse(await world.ok('deployment', 'status', 'base', '--json')) as { devices: { conflicts: { name: string; winner: { deployment: string } }[] }[] };
  assert.ok(status.devices.every((d) => d.conflicts.some((c) => c.name === 'base' && c.winner.deployment === 'extra')), 'every device shows the base/extra conflict won by extra');
  await world.ok('deployment', 'delete', 'extra');
  await untilRunning(devices, { base: images.busybox1 });
});

test('a label change moves a device from one deployment to another; the others are untouched', async () => {
  const [a, b, c] = devices as [WorldDevice, WorldDevice, WorldDevice];
  await world.ok('deployment', 'create', 'site-north', '--selector', 'site=north', world.composeFile({ services: { north: world.service(images.busybox1) } }));
  await world.ok('deployment', 'create', 'site-south', '--selector', 'site=south', world.composeFile({ services: { south: world.service(images.busybox2) } }));
  await world.ok('label', a.deviceId, 'site=north');
  await untilRunning([a], { base: images.busybox1, north: images.busybox1 });
  await world.ok('label', a.deviceId, 'site=south');
  await untilRunning([a], { base: images.busybox1, south: images.busybox2 });
  await untilRunning([b, c], { base: images.busybox1 });
  const list = JSON.parse(await world.ok('deployment', 'list', '--json')) as { name: string; devices: number }[];
  assert.deepEqual(list.map((d) => [d.name, d.devices]), [['base', 3], ['site-north', 0], ['site-south', 1]]);
});

test('an update rolls out in waves: the canary first, then the rest, and status says done', async () => {
  await world.ok('deployment', 'update', 'base', world.composeFile({ services: { base: world.service(images.busybox2) } }));
  const [a, b, c] = devices as [WorldDevice, WorldDevice, WorldDevice];
  await untilRunning([a], { base: images.busybox2, south: images.busybox2 });
  await untilRunning([b, c], { base: images.busybox2 });
  const status = await waitFor('the rollout done', async () => {
    const s = JSON.parse(await world.ok('deployment', 'status', 'base', '--json')) as { rollout: { phase: string; fromRevision: number; toRevision: number; counts: { healthy: number } } };
    return s.rollout.phase === 'done' ? s : undefined;
  }, 60_000, { intervalMs: 500 });
  assert.deepEqual([status.rollout.fromRevision, status.rollout.toRevision, status.rollout.counts.healthy], [1, 2, 3]);
  const text = await world.ok('deployment', 'status', 'base');
  assert.match(text, /wave 1 +1 →/);
});
