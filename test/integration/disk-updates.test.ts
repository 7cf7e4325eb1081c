import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test, type TestContext } from 'node:test';
import { LABELS } from '../../agent/supervisor/container-labels.js';
import type { SupervisorEvent } from '../../agent/supervisor/supervisor.js';
import { app, diskConfig, MiB, startDiskWorld, type DiskWorld, type Supervised } from '../support/disk-kit.js';
import { busyboxRootfs, pushImage, randomLayer } from '../support/image-writer.js';
import { dockerTestEnv } from '../support/supervisor-harness.js';
import { waitFor } from '../support/wait-for.js';

// Updates on a short disk, against a real engine whose data root is a small
// ext4 filesystem made for this file: an update switched to
// kill-then-download, a pull refused when even that cannot fit, and a pull
// that meets a full disk anyway, then completes once space returns.

const env = dockerTestEnv();
const repo = `tsunagu-test-disk/updates-${randomBytes(3).toString('hex')}`;
const reserve = 10 * MiB;
let kit: DiskWorld;

before(async () => {
  kit = await startDiskWorld('tsunagu-disk-updates-', 256);
});

after(async () => {
  await kit?.close();
});

/** `s` with `image` applied as version 1 and synced; the supervisor stopped and the disk unfilled when test `t` ends. */
async function syncedAtV1(t: TestContext, s: Supervised, image: string): Promise<Supervised> {
  t.after(() => s.supervisor.stop());
  t.after(() => kit.unfill());
  await s.apply(app(image), '1');
  await waitFor('v1 synced', () => s.supervisor.state().status === 'synced', 30_000);
  return s;
}

/** Give the disk its space back and wait until `s` runs `image`, synced, by itself (no new desired state). */
async function completesOnceSpaceReturns(s: Supervised, image: string): Promise<void> {
  kit.unfill();
  await waitFor('the update to complete by itself', () => {
    const r = s.supervisor.state().services[0];
    return r?.image === image && r.state === 'running' && s.supervisor.state().status === 'synced';
  }, 60_000, { detail: () => s.supervisor.state().services });
}

test('when the new image fits only without the old one, the update switches to kill-then-download, says so, and completes', async (t) => {
  const k1 = await pushImage(env.registry, repo, 'k1', [busyboxRootfs(), randomLayer(24 * MiB)]);
  const k2 = await pushImage(env.registry, repo, 'k2', [busyboxRootfs(), randomLayer(24 * MiB)]);
  const s = await syncedAtV1(t, kit.supervised(diskConfig({ reserveBytes: reserve, unpackFactor: 1.2 })), k1.ref);
  const oldContainer = s.supervisor.state().services[0]?.containerId;
  assert.ok(oldContainer, 'oldContainer');

  // 22 MiB above the reserve: k2 needs about 28.8 MiB (24 MiB × 1.2); removing k1 (its layer and the base only it holds) frees about 26 MiB more.
  await kit.fillTo(reserve + 22 * MiB);
  await s.apply(app(k2.ref), '2');
  await waitFor('v2 synced', () => s.supervisor.state().services[0]?.image === k2.ref && s.supervisor.state().status === 'synced', 30_000, { detail: () => s.supervisor.state() });

  const switched = s.events.find((e): e is Extract<SupervisorEvent, { type: 'update-switched' }> => e.type === 'update-switched');
  assert.ok(switched, JSON.stringify(s.events.map((e) => e.type)));
  assert.deepEqual([switched.service, switched.image, switched.strategy], ['app', k2.ref, 'kill-then-download']);
  assert.match(switched.reason, /needs about 28\.\d MiB, .* removing the old version first frees about 2\d\.\d MiB: switching to kill-then-download/);
  assert.ok(s.states.some((st) => st.services[0]?.updateSwitch?.strategy === 'kill-then-download'), 'the switch was visible in the reported state');
  const removed: Record<string, unknown> | undefined = s.events.find((e) => e.type === 'image-removed');
  assert.deepEqual(removed && [removed.image, removed.trigger], [k1.ref, 'kill-then-download']);
  const order = s.events.map((e) => e.type);
  assert.ok(order.indexOf('update-switched') < order.indexOf('image-removed') && order.indexOf('image-removed') < order.lastIndexOf('pulled'), order.join(' '));
  const now = s.supervisor.state().services[0];
  assert.ok(now, 'now');
  assert.deepEqual([now.image, now.state, now.updateSwitch], [k2.ref, 'running', null]);
  assert.notEqual(now.containerId, oldContainer);
  assert.equal(await kit.present(k1.ref), false, 'the old image made room');
});

test('when even that cannot fit, the pull is refused with NO_SPACE, the running version stays, and the update completes once space returns', async (t) => {
  const old = await pushImage(env.registry, repo, 'k2b', [busyboxRootfs(), randomLayer(24 * MiB)]);
  const next = await pushImage(env.registry, repo, 'k3', [busyboxRootfs(), randomLayer(60 * MiB)]);
  const s = await syncedAtV1(t, kit.supervised(diskConfig({ reserveBytes: reserve, unpackFactor: 1.2 })), old.ref);
  const running = s.supervisor.state().services[0]?.containerId;
  await kit.fillTo(reserve + 18 * MiB);

  await s.apply(app(next.ref), '2');
  await waitFor('the pull to be refused', () => s.supervisor.state().services[0]?.state === 'pull-failed', 30_000, { detail: () => s.supervisor.state() });
  const r = s.supervisor.state().services[0];
  assert.ok(r, 'r');
  assert.deepEqual([r.lastError?.code, r.containerId, r.outdated], ['NO_SPACE', running, true], JSON.stringify(r));
  assert.match(r.lastError?.message ?? '', /needs about 72\.\d MiB, at most \d+\.\d MiB can be free above the reserve even without the old version/);
  assert.equal(s.events.some((e) => e.type === 'update-switched'), false);
  const failed = s.events.find((e): e is Extract<SupervisorEvent, { type: 'pull-failed' }> => e.type === 'pull-failed');
  assert.equal(failed?.code, 'NO_SPACE');
  assert.equal((await kit.engine.docker.getContainer(running ?? '').inspect()).State.Running, true);
  assert.equal(await kit.present(old.ref), true, 'the old image is kept');

  // Space returns: the refused pull is tried again by itself (pull back-off) and the update completes.
  await completesOnceSpaceReturns(s, next.ref);
});

test('a pull that fills the disk anyway fails with NO_SPACE, keeps the old version, and completes by itself once space returns', async (t) => {
  const old = await pushImage(env.registry, repo, 'k4a', [busyboxRootfs(), randomLayer(2 * MiB)]);
  // The engine holds the download beside the unpacked layer: 30 MiB takes about 60 MiB while it is pulled.
  const big = await pushImage(env.registry, repo, 'k4', [busyboxRootfs(), randomLayer(30 * MiB)]);
  // No guard: the engine meets the full disk itself.
  const s = await syncedAtV1(t, kit.supervised(diskConfig({}), false), old.ref);
  const running = s.supervisor.state().services[0]?.containerId ?? '';
  const startedAt = (await kit.engine.docker.getContainer(running).inspect()).State.StartedAt;
  await kit.fillTo(15 * MiB);

  await s.apply(app(big.ref), '2');
  await waitFor('the pull to fail', () => s.events.some((e) => e.type === 'pull-failed'), 30_000);
  const failed = s.events.find((e) => e.type === 'pull-failed') as Extract<SupervisorEvent, { type: 'pull-failed' }>;
  assert.equal(failed.code, 'NO_SPACE', failed.error);
  assert.match(failed.error, /no space left on device.*the engine's disk is full/);
  // Reported: the state the agent publishes shows the service pull-failed with NO_SPACE, still on its old container.
  await waitFor('the failure in the reported state', () => s.states.some((st) => st.services[0]?.state === 'pull-failed'), 10_000, { detail: () => s.states.at(-1) });
  const reported = s.states.find((st) => st.services[0]?.state === 'pull-failed')!;
  const r = reported.services[0]!;
  assert.deepEqual([reported.version, reported.status, r.lastError?.code, r.containerId, r.image, r.outdated], ['2', 'degraded', 'NO_SPACE', running, old.ref, true], JSON.stringify(reported));
  // Nothing lost: the old version's container runs on, never restarted, and its image is still there.
  const still = await kit.engine.docker.getContainer(running).inspect();
  assert.deepEqual([still.State.Running, still.State.StartedAt], [true, startedAt], 'the old version runs on, untouched');
  assert.equal(await kit.present(old.ref), true, 'the old image is kept');

  await completesOnceSpaceReturns(s, big.ref);
  // Recovered without a new desired state: one container, the new version's; the old one is gone.
  const after = await kit.engine.docker.listContainers({ all: true, filters: { label: [`${LABELS.scope}=${still.Config.Labels[LABELS.scope]}`] } });
  assert.deepEqual(after.map((c) => [c.Image, c.State]), [[big.ref, 'running']]);
});
