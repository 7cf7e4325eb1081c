import assert from 'node:assert/strict';
import { test } from 'node:test';
import { judgeDevice, type VerdictInput } from '../../../provisioning/deployments/device-verdict.js';
import { reported, service } from './reported-fixtures.js';

const MIN = 60_000;
const base: VerdictInput = { reported: null, online: true, version: 7, bakeStartedAt: null, bakeMs: 10 * MIN, now: 100 * MIN };
const judge = (over: Partial<VerdictInput>): ReturnType<typeof judgeDevice> => judgeDevice({ ...base, ...over });

test('nothing published yet, or the device still on an older version: pending', () => {
  assert.equal(judge({ version: null, reported: reported({ desiredVersion: 9, appliedVersion: 9 }) }).verdict, 'pending');
  assert.equal(judge({ reported: null }).verdict, 'pending');
  assert.equal(judge({ reported: reported({ desiredVersion: 6, appliedVersion: 6, status: 'synced' }) }).verdict, 'pending');
});

test('the version in probation is applying; a service fault meanwhile is shown as the reason', () => {
  assert.deepEqual(judge({ reported: reported({ desiredVersion: 7, appliedVersion: 6, status: 'applying', services: [service('web', { health: 'starting' })] }) }), { verdict: 'applying', reason: null });
  const pullFailed = judge({
    reported: reported({
      desiredVersion: 7, appliedVersion: 6, status: 'degraded',
      services: [service('web', { state: 'pull-failed', lastError: { code: 'PULL_FAILED', message: 'manifest unknown' } })],
    }),
  });
  assert.deepEqual(pullFailed, { verdict: 'applying', reason: { service: 'web', state: 'pull-failed', health: 'none', code: 'PULL_FAILED', message: 'manifest unknown' } });
});

test('past probation the bake runs from when the fleet first saw it (not the report time), then healthy', () => {
  const synced = reported({ at: 0, desiredVersion: 7, appliedVersion: 7, status: 'synced', services: [service('web')] });
  assert.deepEqual(judge({ reported: synced }), { verdict: 'baking', reason: null, since: 100 * MIN });
  assert.deepEqual(judge({ reported: synced, bakeStartedAt: 95 * MIN }), { verdict: 'baking', reason: null, since: 95 * MIN });
  assert.deepEqual(judge({ reported: synced, bakeStartedAt: 90 * MIN }), { verdict: 'healthy', reason: null, since: 90 * MIN });
  assert.equal(judge({ reported: synced, bakeMs: 0 }).verdict, 'healthy');
  // A newer version that carries ours, applied, counts too.
  assert.equal(judge({ reported: reported({ desiredVersion: 9, appliedVersion: 9, status: 'synced' }) }).verdict, 'baking');
});

test('a failed probation of our version fails, with the service, the code, the message and the health', () => {
  const state = reported({
    desiredVersion: 7, appliedVersion: 6, status: 'failed',
    error: { code: 'PROBATION_FAILED', message: 'web: unhealthy after 12 s; rolled back to version 6' },
    services: [service('db'), service('web', { health: 'unhealthy', lastError: { code: 'PROBATION_FAILED', message: 'unhealthy after 12 s' } })],
  });
  assert.deepEqual(judge({ reported: state }), {
    verdict: 'failed',
    reason: { service: 'web', code: 'PROBATION_FAILED', message: 'web: unhealthy after 12 s; rolled back to version 6', state: 'running', health: 'unhealthy' },
  });
  // The retained failure is evidence even when the device has gone offline since.
  assert.equal(judge({ reported: state, online: false }).verdict, 'failed');
});

test('a refusal of our version fails with the reason given for the service', () => {
  const state = reported({
    desiredVersion: 7, appliedVersion: 6, status: 'refused',
    error: { code: 'ADMISSION_REFUSED', message: '1 service(s) do not fit', services: { web: 'needs 512 MiB, 200 MiB free' } },
    services: [service('web')],
  });
  assert.deepEqual(judge({ reported: state }).reason, { service: 'web', code: 'ADMISSION_REFUSED', message: 'needs 512 MiB, 200 MiB free', state: 'running', health: 'none' });
});

test('an old failure does not judge a new version', () => {
  const old = reported({ desiredVersion: 5, appliedVersion: 4, status: 'failed', error: { code: 'PROBATION_FAILED', message: 'x' } });
  assert.equal(judge({ reported: old }).verdict, 'pending');
});

test('during the bake a crash or an unhealthy check fails the device; eviction and an operator stop do not', () => {
  const during = (s: ReturnType<typeof service>) => judge({ reported: reported({ desiredVersion: 7, appliedVersion: 7, status: 'degraded', services: [s] }), bakeStartedAt: 98 * MIN });
  assert.deepEqual(during(service('web', { state: 'backoff', restartCount: 3, lastError: { code: 'RUNTIME_FAILED', message: 'exited 1' } })), {
    verdict: 'failed', reason: { service: 'web', state: 'backoff', health: 'none', code: 'RUNTIME_FAILED', message: 'exited 1' },
  });
  assert.equal(during(service('web', { health: 'unhealthy' })).verdict, 'failed');
  assert.equal(during(service('web', { state: 'evicted', lastError: { code: 'PRESSURE_EVICTED', message: 'memory 95% > 90%' } })).verdict, 'baking');
  assert.equal(during(service('web', { state: 'stopped' })).verdict, 'baking');
});

test('offline, or an engine that cannot be reached: offline, never failed', () => {
  assert.deepEqual(judge({ online: false, reported: reported({ desiredVersion: 7, appliedVersion: 7 }) }), { verdict: 'offline', reason: null });
  const engineDown = reported({ desiredVersion: 7, appliedVersion: 6, status: 'failed', error: { code: 'RUNTIME_UNAVAILABLE', message: 'connect ENOENT /var/run/docker.sock' } });
  assert.deepEqual(judge({ reported: engineDown }), { verdict: 'offline', reason: { code: 'RUNTIME_UNAVAILABLE', message: 'connect ENOENT /var/run/docker.sock' } });
});

test("another layer's failure in a version that carries ours is not ours: ours is judged by its own services", () => {
  const state = reported({
    desiredVersion: 8, appliedVersion: 6, status: 'failed',
    error: { code: 'PROBATION_FAILED', message: 'metrics: exited 2' },
    services: [service('web'), service('metrics', { state: 'backoff', lastError: { code: 'PROBATION_FAILED', message: 'exited 2' } })],
  });
  assert.equal(judge({ reported: state, services: new Set(['web']) }).verdict, 'baking');
  assert.equal(judge({ reported: state, services: new Set(['web', 'metrics']) }).verdict, 'failed');
  assert.equal(judge({ reported: state }).verdict, 'failed', 'without the list every failure counts');
  assert.equal(judge({ reported: state, services: new Set() }).verdict, 'failed', 'an empty list excuses nothing');
  const outdated = { ...state, services: [service('web', { outdated: true }), state.services[1]!] };
  assert.equal(judge({ reported: outdated, services: new Set(['web']) }).verdict, 'applying');
});
