import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ActualContainer } from '../../../agent/supervisor/actual-state.js';
import { parseDesiredState } from '../../../protocol/compose/compose-schema.js';
import { configHash } from '../../../agent/supervisor/config-hash.js';
import { containerName, plan, recordExits, type PlanFacts } from '../../../agent/supervisor/planner.js';
import { DEFAULT_RESTART_BACKOFF, recordFailure } from '../../../agent/supervisor/restart-backoff.js';
import { isStaleRuntimeState, resolveStale } from '../../../agent/supervisor/runtime-state.js';

const NOW = 1_800_000_000_000;
const ID = '2aa69e418c98a23aba577afdd6ae0e2eea5b150cca278b7ce9c1dc7d7ff7779c';

describe('isStaleRuntimeState', () => {
  test("the engine's words for a task, container object or runc state left from before", () => {
    for (const message of [
      `start ${ID}: task ${ID}: already exists`, // dockerd 20.10 after a stop during a start (scenario 7)
      `start web: container "${ID}": already exists`,
      `start web: OCI runtime create failed: container with id exists: ${ID}: unknown`,
      'start web: failed to create shim task: id already in use: unknown',
    ]) assert.equal(isStaleRuntimeState(message), true, message);
  });
  test('other start failures are not', () => {
    for (const message of [
      `start ${ID}: transport is closing: unavailable`,
      'start web: failed to update store for object type *libnetwork.endpoint: open : no such file or directory',
      'start web: OCI runtime create failed: runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown',
      'create web: Conflict. The container name "/s-web-1" is already in use by container "abc"',
      'start web: no such container',
    ]) assert.equal(isStaleRuntimeState(message), false, message);
  });
});

const [web] = parseDesiredState({ services: { web: { image: 'img:1', restart: 'always' } } }).services;
assert.ok(web, 'web');
const hash = configHash(web);
const box = (extra: Partial<ActualContainer>): ActualContainer => ({
  id: ID, name: containerName('s', 'web', hash), service: 'web', configHash: hash, dependsOn: [], version: '1', image: 'img:1', imageId: 'sha256:i',
  status: 'created', health: 'none', exitCode: null, startedAt: null, finishedAt: null, ...extra,
});
const images = { 'img:1': { id: 'sha256:i', digest: null, repoDigests: [] } };
const facts = (extra: Partial<PlanFacts> = {}): PlanFacts => ({
  now: NOW, scope: 's', restartBackoff: {}, pullBackoff: {}, deviceLabels: new Set(), pullsInFlight: new Set(), ...extra,
});

describe('resolveStale', () => {
  const mark = { service: 'web', reason: 'task: already exists' };
  test('a mark made under the name of a just-created container is keyed by its id', () => {
    assert.deepEqual(resolveStale({ containers: [box({})], images }, new Map([[box({}).name, mark]])), new Map([[ID, mark]]));
  });
  test('marks of containers gone (replaced), or of another service, are dropped', () => {
    assert.equal(resolveStale({ containers: [], images }, new Map([[ID, mark]])).size, 0);
    assert.equal(resolveStale({ containers: [box({ service: 'api' })], images }, new Map([[ID, mark]])).size, 0);
  });
});

describe('plan with stale runtime state', () => {
  const stale = new Set([ID]);
  test('the container is removed and created anew under the same name, then started; never started again as it is', () => {
    assert.deepEqual(plan({ containers: [box({})], images }, [web], facts()), [{ kind: 'start', service: 'web', container: ID, restart: false }]);
    assert.deepEqual(plan({ containers: [box({})], images }, [web], facts({ staleRuntime: stale })), [
      { kind: 'remove', service: 'web', containerId: ID },
      { kind: 'create', service: 'web', desired: web, configHash: hash, name: containerName('s', 'web', hash) },
      { kind: 'start', service: 'web', container: containerName('s', 'web', hash), restart: false },
    ]);
  });
  test('an exited one the engine stopped is replaced too, whatever the resume', () => {
    const exited = box({ status: 'exited', exitCode: 0, startedAt: NOW - 60_000, finishedAt: NOW - 10_000 });
    const steps = plan({ containers: [exited], images }, [web], facts({ staleRuntime: stale, resume: stale }));
    assert.deepEqual(steps.map((s) => s.kind), ['remove', 'create', 'start']);
    // Its exit is no crash: the container no longer counts as the service's.
    assert.deepEqual(recordExits({ containers: [exited], images }, [web], {}, NOW, DEFAULT_RESTART_BACKOFF, new Set(), stale), {});
  });
  test('not before the recovery back-off ends, nor during a crash back-off', () => {
    const recovering = { web: recordFailure(undefined, { at: NOW, key: 'stale#1' }, DEFAULT_RESTART_BACKOFF) };
    assert.deepEqual(plan({ containers: [box({})], images }, [web], facts({ staleRuntime: stale, recoveryBackoff: recovering })), []);
    const later = facts({ staleRuntime: stale, recoveryBackoff: recovering, now: NOW + DEFAULT_RESTART_BACKOFF.initialDelayMs });
    assert.equal(plan({ containers: [box({})], images }, [web], later).length, 3);
    const crashing = { web: recordFailure(undefined, { at: NOW, key: 'create#1', configHash: hash }, DEFAULT_RESTART_BACKOFF) };
    assert.deepEqual(plan({ containers: [box({})], images }, [web], facts({ staleRuntime: stale, restartBackoff: crashing })), []);
  });
  test('a stale container of another configuration goes like any old one, the recovery back-off does not hold the update back', () => {
    const old = box({ configHash: 'other' });
    const recovering = { web: recordFailure(undefined, { at: NOW, key: 'stale#1' }, DEFAULT_RESTART_BACKOFF) };
    const steps = plan({ containers: [old], images }, [web], facts({ staleRuntime: stale, recoveryBackoff: recovering }));
    assert.deepEqual(steps.map((s) => s.kind), ['remove', 'create', 'start']);
  });
});
