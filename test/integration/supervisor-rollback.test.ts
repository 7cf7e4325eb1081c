import assert from 'node:assert/strict';
import { test } from 'node:test';
import { supervisorHarness } from '../support/supervisor-harness.js';

const PROBATION_MS = 3_000;
/** A failure is acted on after the longest stop grace + 5 s (an engine shutdown looks like a crash until then). */
const grace = { stop_grace_period: '1s' };

test('health-gated rollout: a new image that crashes within its probation is rolled back to the previous one; the version is reported failed', async (t) => {
  const h = await supervisorHarness(t, 'rollback', { probationMs: PROBATION_MS });
  const v1 = h.compose({ web: { image: h.images.busybox1, restart: 'always', ...grace }, other: { image: h.images.busybox1, restart: 'always', ...grace } });
  await h.settle(v1, 'v1');
  await h.waitFor('v1 synced after its probation', () => h.supervisor.state().status === 'synced', PROBATION_MS + 10_000);
  const otherBefore = await h.only('other');

  const v2 = h.compose({ web: { image: h.images.crash, restart: 'always', ...grace }, other: { image: h.images.busybox1, restart: 'always', ...grace } });
  await h.apply(v2, 'v2');
  await h.waitFor('v2 reported failed', () => h.supervisor.state().status === 'failed', 20_000);
  const state = h.supervisor.state();
  assert.equal(state.version, 'v2');
  assert.equal(state.error?.code, 'PROBATION_FAILED');
  assert.match(state.error?.message ?? '', /web: exited with code 3 within the probation window \(3 s\); rolled back to its configuration of version v1/);
  const web = state.services.find((s) => s.name === 'web');
  assert.equal(web?.lastError?.code, 'PROBATION_FAILED');
  const event = h.events.find((e) => e.type === 'probation-failed');
  assert.deepEqual(event, { type: 'probation-failed', service: 'web', reason: 'exited with code 3 within the probation window (3 s)', version: 'v2', rolledBackTo: 'v1' });

  // The previous image runs again, one container; the unchanged service was never touched.
  await h.waitFor('web back on busybox 1', async () => {
    const c = (await h.containers()).get('web') ?? [];
    return c.length === 1 && c[0]?.Config.Image === h.images.busybox1 && c[0]?.State.Running === true;
  }, 20_000);
  await h.supervisor.idle();
  assert.match(await h.logs((await h.only('web')).Id), /^1\n/);
  const otherAfter = await h.only('other');
  assert.equal(otherAfter.Id, otherBefore.Id);
  assert.equal(otherAfter.State.StartedAt, otherBefore.State.StartedAt);
  // Still failed: a rollback that runs well does not make v2 applied.
  assert.equal(h.supervisor.state().status, 'failed');

  // The next version is judged afresh: a good update passes its probation and syncs.
  await h.apply(h.compose({ web: { image: h.images.busybox2, restart: 'always', ...grace }, other: { image: h.images.busybox1, restart: 'always', ...grace } }), 'v3');
  await h.waitFor('v3 running', async () => (await h.containers()).get('web')?.[0]?.Config.Image === h.images.busybox2);
  const during = h.supervisor.state();
  assert.equal(during.status, 'applying', 'not synced before the probation is over');
  await h.waitFor('v3 synced after its probation', () => h.supervisor.state().status === 'synced', PROBATION_MS + 10_000);
  assert.equal(h.supervisor.state().error, null);
});

test('health-gated rollout: a new image whose healthcheck fails is rolled back; a new service without an earlier version stays and fails the version', async (t) => {
  const h = await supervisorHarness(t, 'rollback-health', { probationMs: PROBATION_MS });
  await h.settle(h.compose({ web: { image: h.images.busybox1, restart: 'always', ...grace } }), 'v1');
  await h.waitFor('v1 synced', () => h.supervisor.state().status === 'synced', PROBATION_MS + 10_000);

  await h.apply(h.compose({
    web: { image: h.images.unhealthy, restart: 'always', ...grace },
    extra: { image: h.images.crash, restart: 'always', ...grace },
  }), 'v2');
  await h.waitFor('both judged', () => h.events.filter((e) => e.type === 'probation-failed').length === 2, 30_000);
  const failed = h.events.filter((e) => e.type === 'probation-failed');
  assert.deepEqual(failed.find((e) => e.service === 'web'), {
    type: 'probation-failed', service: 'web', reason: 'unhealthy within the probation window (3 s)', version: 'v2', rolledBackTo: 'v1',
  });
  assert.deepEqual(failed.find((e) => e.service === 'extra'), {
    type: 'probation-failed', service: 'extra', reason: 'exited with code 3 within the probation window (3 s)', version: 'v2', rolledBackTo: null,
  });
  await h.waitFor('web back on busybox 1', async () => (await h.containers()).get('web')?.[0]?.Config.Image === h.images.busybox1, 20_000);
  const state = h.supervisor.state();
  assert.equal(state.status, 'failed');
  assert.match(state.error?.message ?? '', /extra: exited with code 3 .*; no earlier version to return to/);
  assert.equal((await h.containers()).get('web')?.length, 1);
});
