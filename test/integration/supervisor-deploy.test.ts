import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LABELS } from '../../agent/supervisor/container-labels.js';
import { supervisorHarness } from '../support/supervisor-harness.js';

test('deploy from the registry, update the image, change config, remove a service', async (t) => {
  const h = await supervisorHarness(t, 'deploy');
  const { busybox1, busybox2 } = h.images;

  // Deploy: both images come from the registry.
  const first = await h.settle(h.compose({
    web: { image: busybox1, restart: 'always' },
    worker: { image: busybox1, restart: 'always', environment: { MODE: 'a' } },
  }), 'v1');
  assert.equal(first.status, 'synced', JSON.stringify(first));
  assert.deepEqual(first.services.map((s) => [s.name, s.state]), [['web', 'running'], ['worker', 'running']]);
  assert.match(first.services[0]?.imageDigest ?? '', /^127\.0\.0\.1:5000\/tsunagu-test\/busybox@sha256:[0-9a-f]{64}$/);
  assert.ok(h.events.some((e) => e.type === 'pulled' && e.image === busybox1), "h.events.some((e) => e.type === 'pulled' && e.image === busybox1)");
  assert.equal(h.events.filter((e) => e.type === 'pulled').length, 1, 'one pull for two services on one image');
  const web1 = await h.only('web');
  assert.equal(web1.State.Running, true);
  assert.equal(web1.Config.Labels[LABELS.managed], 'true');
  assert.equal(web1.Config.Labels[LABELS.version], 'v1');
  assert.equal(web1.HostConfig.RestartPolicy?.Name, 'no', 'restarts are the supervisor\'s');
  assert.equal(web1.HostConfig.NetworkMode, 'none');
  assert.match(await h.logs(web1.Id), /^1$/m);
  const worker1 = await h.only('worker');

  // Update web :1 -> :2; worker is untouched.
  const second = await h.settle(h.compose({
    web: { image: busybox2, restart: 'always' },
    worker: { image: busybox1, restart: 'always', environment: { MODE: 'a' } },
  }), 'v2');
  assert.equal(second.status, 'synced', JSON.stringify(second));
  const web2 = await h.only('web');
  assert.notEqual(web2.Id, web1.Id);
  assert.equal(web2.Config.Image, busybox2);
  assert.match(await h.logs(web2.Id), /^2$/m);
  assert.equal(web2.Config.Labels[LABELS.version], 'v2');
  const workerAfter = await h.only('worker');
  assert.equal(workerAfter.Id, worker1.Id);
  assert.equal(workerAfter.State.StartedAt, worker1.State.StartedAt);

  // Config change: the worker is recreated with the new environment.
  await h.settle(h.compose({
    web: { image: busybox2, restart: 'always' },
    worker: { image: busybox1, restart: 'always', environment: { MODE: 'b' } },
  }), 'v3');
  const worker2 = await h.only('worker');
  assert.notEqual(worker2.Id, worker1.Id);
  assert.ok(worker2.Config.Env.includes('MODE=b'), "worker2.Config.Env.includes('MODE=b')");
  assert.equal((await h.only('web')).Id, web2.Id);

  // Remove the worker.
  const last = await h.settle(h.compose({ web: { image: busybox2, restart: 'always' } }), 'v4');
  assert.equal(last.status, 'synced');
  const all = await h.containers();
  assert.deepEqual([...all.keys()], ['web']);
});
