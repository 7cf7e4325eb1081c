import assert from 'node:assert/strict';
import { test } from 'node:test';
import { supervisorHarness } from '../support/supervisor-harness.js';

test('depends_on service_healthy: the dependent starts only once its dependency is healthy', async (t) => {
  const h = await supervisorHarness(t, 'healthy');
  const state = await h.settle(h.compose({
    db: {
      image: h.images.busybox1,
      restart: 'always',
      // Healthy only after 3 s: longer than pulling and creating both services takes.
      command: ['sh', '-c', 'trap "exit 0" TERM; (sleep 3; touch /tmp/ready) & sleep 1000000 & wait'],
      healthcheck: { test: ['CMD', 'test', '-f', '/tmp/ready'], interval: '300ms', timeout: '1s', retries: 1 },
    },
    web: { image: h.images.busybox2, restart: 'always', depends_on: { db: { condition: 'service_healthy' } } },
  }), 'v1');
  // apply() returns while db is still starting: web waits, created but not started.
  assert.deepEqual(state.services.map((s) => [s.name, s.state]), [['db', 'running'], ['web', 'waiting']]);
  assert.equal(state.status, 'applying');
  assert.equal((await h.only('web')).State.Running, false);

  await h.waitFor('web to run', async () => (await h.only('web')).State.Running, 10_000);
  await h.supervisor.idle();
  const db = await h.only('db');
  const web = await h.only('web');
  assert.equal(db.State.Health?.Status, 'healthy');
  const healthyAt = Date.parse(db.State.Health?.Log.find((l) => l.ExitCode === 0)?.End ?? '');
  assert.ok(Date.parse(web.State.StartedAt) >= healthyAt, 'web started after db turned healthy');
  assert.ok(h.events.some((e) => e.type === 'healthy' && e.service === 'db'), "h.events.some((e) => e.type === 'healthy' && e.service === 'db')");
  assert.equal(h.supervisor.state().status, 'synced');
});

test('depends_on service_healthy on an unhealthy service: the dependent never starts, status is degraded', async (t) => {
  const h = await supervisorHarness(t, 'unhealthy');
  await h.settle(h.compose({
    db: { image: h.images.unhealthy, restart: 'always' },
    web: { image: h.images.busybox1, restart: 'always', depends_on: { db: { condition: 'service_healthy' } } },
  }), 'v1');
  await h.waitFor('db to be reported unhealthy', () => h.supervisor.state().services.find((s) => s.name === 'db')?.health === 'unhealthy');
  assert.ok(h.events.some((e) => e.type === 'unhealthy' && e.service === 'db'), "h.events.some((e) => e.type === 'unhealthy' && e.service === 'db')");
  assert.equal(h.supervisor.state().status, 'degraded');
  assert.equal((await h.only('web')).State.Running, false);
  assert.equal((await h.only('web')).State.StartedAt.startsWith('0001-'), true, 'never started');
});

test('depends_on service_completed_successfully: a one-shot job runs first', async (t) => {
  const h = await supervisorHarness(t, 'completed');
  const state = await h.settle(h.compose({
    migrate: { image: h.images.busybox1, command: ['sh', '-c', 'sleep 0.5; exit 0'] },
    web: { image: h.images.busybox1, restart: 'always', depends_on: { migrate: { condition: 'service_completed_successfully' } } },
  }), 'v1');
  assert.equal(state.services.find((s) => s.name === 'web')?.state, 'waiting');
  await h.waitFor('web to run', async () => (await h.only('web')).State.Running, 10_000);
  const migrate = await h.only('migrate');
  assert.equal(migrate.State.ExitCode, 0);
  assert.ok(Date.parse((await h.only('web')).State.StartedAt) >= Date.parse(migrate.State.FinishedAt), "Date.parse((await h.only('web')).State.StartedAt) >= Date.parse(migrate.State.FinishedAt)");
  await h.supervisor.idle();
  assert.equal(h.supervisor.state().status, 'synced', JSON.stringify(h.supervisor.state()));
});
