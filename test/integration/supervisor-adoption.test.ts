import assert from 'node:assert/strict';
import type { ContainerInspectInfo } from 'dockerode';
import { test } from 'node:test';
import { supervisorHarness } from '../support/supervisor-harness.js';

test('a restarted supervisor adopts running containers without restarting any', async (t) => {
  const h = await supervisorHarness(t, 'adopt');
  const doc = h.compose({
    db: { image: h.images.busybox1, restart: 'always' },
    web: { image: h.images.busybox2, restart: 'unless-stopped', depends_on: ['db'] },
  });
  assert.equal((await h.settle(doc, 'v1')).status, 'synced');
  const before = await h.containers();

  await h.restartSupervisor();
  const eventsBefore = h.events.length;
  const state = await h.settle(doc, 'v1');
  assert.equal(state.status, 'synced');
  const after = await h.containers();
  for (const service of ['db', 'web']) {
    const [a] = before.get(service) ?? [];
    const [b, extra] = after.get(service) ?? [];
    assert.ok(a && b && extra === undefined, service);
    assert.equal(b.Id, a.Id, `${service} kept its container`);
    assert.equal(b.State.StartedAt, a.State.StartedAt, `${service} was not restarted`);
  }
  assert.deepEqual(h.events.slice(eventsBefore).filter((e) => e.type !== 'pull-progress'), [], 'nothing pulled, started or stopped');
});

test('a container removed or stopped by hand is put back; foreign containers are never touched', async (t) => {
  const h = await supervisorHarness(t, 'restore');
  // A container of the test's own, without the ownership labels: the supervisor must leave it alone.
  const foreign = await h.docker.createContainer({
    Image: h.images.local, name: `${h.scope}-foreign`, Labels: { 'tsunagu.test': h.scope, 'io.tsunagu.service': 'web' },
    HostConfig: { NetworkMode: 'none' },
  });
  await foreign.start();
  const owned = async (): Promise<ContainerInspectInfo[]> => ((await h.containers()).get('web') ?? []).filter((c) => c.Id !== foreign.id);
  await h.settle(h.compose({ web: { image: h.images.busybox1, restart: 'always' } }), 'v1');
  const [original] = await owned();
  assert.ok(original, 'original');

  await h.docker.getContainer(original.Id).remove({ force: true });
  await h.waitFor('web to be recreated', async () => {
    const web = await owned();
    return web.length === 1 && web[0]?.Id !== original.Id && web[0]?.State.Running === true;
  });

  const [current, extra] = await owned();
  assert.ok(current && extra === undefined, 'current && extra === undefined');
  await h.docker.getContainer(current.Id).stop({ t: 1 });
  await h.waitFor('web to run again', async () => (await h.docker.getContainer(current.Id).inspect()).State.Running);
  await h.supervisor.idle();
  assert.equal(h.supervisor.state().status, 'synced');
  assert.equal((await foreign.inspect()).State.Running, true, 'the unowned container still runs');
});
