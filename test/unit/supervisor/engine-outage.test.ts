import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ActualContainer } from '../../../agent/supervisor/actual-state.js';
import { parseDesiredState } from '../../../agent/supervisor/compose-schema.js';
import { configHash } from '../../../agent/supervisor/config-hash.js';
import { stoppedByEngine } from '../../../agent/supervisor/engine-outage.js';
import { plan, recordExits } from '../../../agent/supervisor/planner.js';
import { DEFAULT_RESTART_BACKOFF, forgetFailure, recordFailure } from '../../../agent/supervisor/restart-backoff.js';

const AT = 1_800_000_000_000;
const [once] = parseDesiredState({ services: { once: { image: 'img:1' } } }).services; // restart: no

function exited(id: string, finishedAt: number | null, startedAt: number | null = AT - 3_600_000): ActualContainer {
  return {
    id, name: id, service: 'once', configHash: once ? configHash(once) : null, dependsOn: [], version: '1', image: 'img:1', imageId: 'sha256:i',
    status: 'exited', health: 'none', exitCode: 0, startedAt, finishedAt,
  };
}

describe('stoppedByEngine', () => {
  const outage = { at: AT, windowMs: 15_000 };
  test('exits within the window before the stream ended (and a little after) are the engine\'s', () => {
    const containers = [exited('during', AT - 2_000), exited('edge', AT - 15_000), exited('after', AT + 4_000)];
    assert.deepEqual([...stoppedByEngine({ containers, images: {} }, outage)].sort(), ['after', 'during', 'edge']);
  });
  test('an exit before the window, one long after, a never-started or live container are not', () => {
    const running = { ...exited('live', null), status: 'running' as const };
    const containers = [exited('earlier', AT - 15_001), exited('later', AT + 60_000), exited('never', null, null), running];
    assert.equal(stoppedByEngine({ containers, images: {} }, outage).size, 0);
  });
});

describe('after an engine outage', () => {
  assert.ok(once);
  const c = exited('c1', AT - 1_000);
  const actual = { containers: [c], images: { 'img:1': { id: 'sha256:i', digest: null, repoDigests: [] } } };
  const facts = { now: AT + 10_000, scope: 's', restartBackoff: {}, pullBackoff: {}, deviceLabels: new Set<string>(), pullsInFlight: new Set<string>() };

  test('a `restart: no` container the engine stopped is started again; without the outage it stays down', () => {
    assert.deepEqual(plan(actual, [once], { ...facts, resume: new Set(['c1']) }), [{ kind: 'start', service: 'once', container: 'c1', restart: true }]);
    assert.deepEqual(plan(actual, [once], facts), []);
  });
  test('its exit is not counted as a crash', () => {
    const [always] = parseDesiredState({ services: { once: { image: 'img:1', restart: 'always' } } }).services;
    assert.ok(always);
    const state = { containers: [{ ...c, configHash: configHash(always) }], images: actual.images };
    const counted = recordExits(state, [always], {}, AT, DEFAULT_RESTART_BACKOFF);
    assert.equal(counted.once?.total, 1);
    assert.deepEqual(recordExits(state, [always], {}, AT, DEFAULT_RESTART_BACKOFF, new Set(['c1'])), {});
  });
  test('a crash counted during the shutdown is taken back, another key leaves the entry alone', () => {
    const entry = recordFailure(recordFailure(undefined, { at: AT - 60_000, key: 'x@1' }, DEFAULT_RESTART_BACKOFF), { at: AT, key: 'c1@2' }, DEFAULT_RESTART_BACKOFF);
    assert.equal(entry.failures, 2);
    const forgiven = forgetFailure(entry, 'c1@2');
    assert.equal(forgiven?.failures, 1);
    assert.equal(forgiven?.total, 1);
    assert.equal(forgiven?.nextAttemptAt, 0);
    assert.equal(forgetFailure(entry, 'other@3'), entry);
    assert.equal(forgetFailure(undefined, 'c1@2'), undefined);
  });
});
