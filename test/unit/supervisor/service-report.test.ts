import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ActualContainer } from '../../../agent/supervisor/actual-state.js';
import { parseDesiredState } from '../../../protocol/compose/compose-schema.js';
import { type DesiredService } from '../../../protocol/compose/desired-service.js';
import { configHash } from '../../../agent/supervisor/config-hash.js';
import { engineUnknown, overallStatus, serviceReports, type ReportInputs } from '../../../agent/supervisor/service-report.js';

const NOW = 1_800_000_000_000;
const desired = parseDesiredState({ services: { web: { image: 'web:2', restart: 'always' }, job: { image: 'job:1' } } }).services;
const web = desired.find((s) => s.name === 'web') as DesiredService;
const job = desired.find((s) => s.name === 'job') as DesiredService;

function c(s: DesiredService, extra: Partial<ActualContainer>): ActualContainer {
  return {
    id: `${s.name}-id`, name: s.name, service: s.name, configHash: configHash(s), dependsOn: [], version: '1', image: s.image,
    imageId: 'sha256:x', status: 'running', health: 'none', exitCode: null, startedAt: NOW - 1000, finishedAt: null, ...extra,
  };
}

function inputs(containers: ActualContainer[], extra: Partial<ReportInputs> = {}): ReportInputs {
  return {
    actual: { containers, images: { 'web:2': { id: 'sha256:w', digest: 'web@sha256:abc', repoDigests: ['web@sha256:abc'] } } }, desired,
    restartBackoff: {}, pullBackoff: {}, lastErrors: new Map(), deviceLabels: new Set(), pullsInFlight: new Set(), now: NOW, ...extra,
  };
}

test('all running and a one-shot job done: synced', () => {
  const reports = serviceReports(inputs([c(web, {}), c(job, { status: 'exited', exitCode: 0 })]));
  assert.deepEqual(reports.map((r) => [r.name, r.state, r.imageDigest]), [['job', 'exited', null], ['web', 'running', 'web@sha256:abc']]);
  assert.equal(overallStatus(reports, desired, false, false), 'synced');
  assert.equal(overallStatus(reports, desired, true, false), 'applying');
  assert.equal(overallStatus(reports, desired, false, true), 'failed');
});

test('an old version still running while the new image cannot be pulled: degraded, outdated, retry time', () => {
  const old = c(web, { configHash: 'old', image: 'web:1' });
  const pullBackoff = { 'web:2': { failures: 1, total: 1, nextAttemptAt: NOW + 500, lastExitCode: null, lastFailureKey: 'p', configHash: null } };
  const lastErrors = new Map([['web', { code: 'PULL_FAILED' as const, message: 'manifest unknown' }]]);
  const [, r] = serviceReports(inputs([old, c(job, { status: 'exited', exitCode: 0 })], { pullBackoff, lastErrors }));
  assert.deepEqual(r && [r.state, r.outdated, r.image, r.retryAt, r.lastError?.code], ['pull-failed', true, 'web:1', NOW + 500, 'PULL_FAILED']);
  assert.equal(overallStatus(serviceReports(inputs([old], { pullBackoff, lastErrors })), desired, false, false), 'degraded');
});

test('crash loop and failed one-shot: degraded; unhealthy: degraded; health starting: applying', () => {
  const restartBackoff = { web: { failures: 2, total: 5, nextAttemptAt: NOW + 2000, lastExitCode: 3, lastFailureKey: 'k', configHash: null } };
  const looping = serviceReports(inputs([c(web, { status: 'exited', exitCode: 3 }), c(job, { status: 'exited', exitCode: 0 })], { restartBackoff }));
  assert.deepEqual(looping.find((r) => r.name === 'web') && [looping[1]?.state, looping[1]?.restartCount, looping[1]?.lastExitCode], ['backoff', 5, 3]);
  assert.equal(overallStatus(looping, desired, false, false), 'degraded');
  const failedJob = serviceReports(inputs([c(web, {}), c(job, { status: 'exited', exitCode: 1 })]));
  assert.equal(overallStatus(failedJob, desired, false, false), 'degraded');
  const unhealthy = serviceReports(inputs([c(web, { health: 'unhealthy' }), c(job, { status: 'exited', exitCode: 0 })]));
  assert.equal(overallStatus(unhealthy, desired, false, false), 'degraded');
  const starting = serviceReports(inputs([c(web, { health: 'starting' }), c(job, { status: 'exited', exitCode: 0 })]));
  assert.equal(overallStatus(starting, desired, false, false), 'applying');
});

test('a new image being pulled while the old version runs: pulling, applying', () => {
  const old = c(web, { configHash: 'old', image: 'web:1' });
  const reports = serviceReports(inputs([old, c(job, { status: 'exited', exitCode: 0 })], { pullsInFlight: new Set(['web:2']) }));
  assert.deepEqual(reports.map((r) => [r.name, r.state, r.outdated]), [['job', 'exited', false], ['web', 'pulling', true]]);
  assert.equal(overallStatus(reports, desired, false, false), 'applying');
});

test('an evicted service: state evicted, the reason in lastError, and the device degraded rather than synced', () => {
  const evicted = new Map([['web', 'memory available 41.0 MiB (8.0 % of 512.0 MiB) below 10 %']]);
  const done = c(job, { status: 'exited', exitCode: 0 });
  // While its container is being stopped, and once it is gone.
  for (const containers of [[c(web, {}), done], [done]]) {
    const reports = serviceReports(inputs(containers, { evicted }));
    const r = reports.find((x) => x.name === 'web');
    assert.deepEqual(r && [r.state, r.lastError], ['evicted', { code: 'PRESSURE_EVICTED', message: 'memory available 41.0 MiB (8.0 % of 512.0 MiB) below 10 %' }]);
    assert.equal(overallStatus(reports, desired, false, false), 'degraded');
  }
  // Restored: the reason is gone with the eviction.
  const back = serviceReports(inputs([c(web, {}), done], { evicted: new Map() }));
  assert.deepEqual(back.map((r) => [r.state, r.lastError]), [['exited', null], ['running', null]]);
  assert.equal(overallStatus(back, desired, false, false), 'synced');
});

test('a service both held by an operator and evicted is reported stopped: the hold outlasts the pressure', () => {
  const reports = serviceReports(inputs([c(job, { status: 'exited', exitCode: 0 })], { held: new Set(['web']), evicted: new Map([['web', 'x']]) }));
  const r = reports.find((x) => x.name === 'web');
  assert.deepEqual(r && [r.state, r.lastError], ['stopped', null]);
});

test('the engine cannot be read: every service unknown, the rest as last known; one not deployed for a label stays so', () => {
  const last = serviceReports(inputs([c(web, {}), c(job, { status: 'exited', exitCode: 0 })]));
  const gpu = { ...last[0]!, name: 'gpu', state: 'not-deployed' as const, containerId: null };
  const gpuService = { ...job, name: 'gpu' };
  const unknown = engineUnknown([...last, gpu], [...desired, gpuService]);
  assert.deepEqual(unknown.map((r) => [r.name, r.state]), [['job', 'unknown'], ['web', 'unknown'], ['gpu', 'not-deployed']]);
  assert.deepEqual({ ...unknown[1], state: 'running' }, last[1], 'image, container, counts: the last known');
});

test('the engine cannot be read since the agent started: every desired service is listed unknown, none dropped', () => {
  const unknown = engineUnknown([], desired);
  assert.deepEqual(unknown.map((r) => [r.name, r.image, r.state, r.containerId]), desired.map((s) => [s.name, s.image, 'unknown', null]));
  // A service known before and one new in the desired state: both listed, in the desired order.
  const [webReport] = serviceReports(inputs([c(web, {}), c(job, { status: 'exited', exitCode: 0 })])).filter((r) => r.name === 'web');
  const both = engineUnknown([webReport!], desired);
  assert.deepEqual(both.map((r) => [r.name, r.state, r.containerId !== null]), desired.map((s) => [s.name, 'unknown', s.name === 'web']));
});
