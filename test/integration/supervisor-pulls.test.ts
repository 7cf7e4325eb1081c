import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startRegistryFront } from '../support/registry-front.js';
import { supervisorHarness } from '../support/supervisor-harness.js';

test('a slow pull neither delays apply() nor blocks restoring another service', async (t) => {
  // A hand-removed container's kill counts as a crash: keep that back-off short here.
  const h = await supervisorHarness(t, 'slowpull', { restartBackoff: { initialDelayMs: 200, maxDelayMs: 1000, resetAfterMs: 60_000 } });
  const front = await startRegistryFront(h.images.busybox2.split('/')[0] ?? '', { manifestDelayMs: 4000 });
  t.after(() => front.close());
  const slowRef = h.images.busybox2.replace(/^[^/]+/, front.host);
  t.after(() => h.docker.getImage(slowRef).remove({ noprune: true }).catch(() => undefined));

  await h.settle(h.compose({ a: { image: h.images.busybox1, restart: 'always' }, b: { image: h.images.busybox1, restart: 'always' } }), 'v1');
  const oldA = await h.only('a');
  const oldB = await h.only('b');

  const began = Date.now();
  const state = await h.apply(h.compose({ a: { image: slowRef, restart: 'always' }, b: { image: h.images.busybox1, restart: 'always' } }), 'v2');
  assert.ok(Date.now() - began < 2000, 'apply() returned before the pull finished');
  const a = state.services.find((s) => s.name === 'a');
  assert.deepEqual(a && [a.state, a.outdated, a.containerId], ['pulling', true, oldA.Id]);
  assert.equal(state.status, 'applying');

  // While a's image downloads, b is removed by hand and comes back.
  await h.docker.getContainer(oldB.Id).remove({ force: true });
  await h.waitFor('b restored', async () => ((await h.containers()).get('b') ?? []).some((c) => c.State.Running && c.Id !== oldB.Id), 3000);
  assert.equal(h.supervisor.state().services.find((s) => s.name === 'a')?.state, 'pulling', 'the pull was still running');
  assert.equal((await h.only('a')).Id, oldA.Id, 'the old a kept running during the pull');

  await h.supervisor.idle();
  const newA = await h.only('a');
  assert.notEqual(newA.Id, oldA.Id);
  assert.equal(newA.Config.Image, slowRef);
  assert.equal(h.supervisor.state().status, 'synced');
});

test('registry credentials reach a registry that demands them; wrong ones fail the pull', async (t) => {
  const credentials = { username: 'device-7', password: `pw-${Math.random().toString(36).slice(2)}` };
  const front = await startRegistryFront(process.env.TSUNAGU_TEST_REGISTRY ?? '', { basicAuth: credentials });
  t.after(() => front.close());
  let password = 'wrong';
  const h = await supervisorHarness(t, 'auth', {
    registryAuth: (image) => (image.startsWith(`${front.host}/`) ? { ...credentials, password, serveraddress: front.host } : undefined),
  });
  const ref = h.images.busybox1.replace(/^[^/]+/, front.host);
  t.after(() => h.docker.getImage(ref).remove({ noprune: true }).catch(() => undefined));

  const refused = await h.settle(h.compose({ web: { image: ref, restart: 'always' } }), 'v1');
  assert.equal(refused.services[0]?.state, 'pull-failed');
  assert.equal(refused.services[0]?.lastError?.code, 'PULL_FAILED');
  assert.equal(front.authorized, 0);

  password = credentials.password;
  const state = await h.settle(h.compose({ web: { image: ref, restart: 'always' } }), 'v2');
  assert.equal(state.services[0]?.state, 'running', JSON.stringify(state.services));
  assert.ok(front.authorized > 0, 'the registry saw the credentials');
});
