import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ActualContainer } from '../../../agent/supervisor/actual-state.js';
import { parseDesiredState } from '../../../protocol/compose/compose-schema.js';
import { configHash } from '../../../agent/supervisor/config-hash.js';
import { stillStopped, stoppedByEngine, takeBackFailures, type FailureRecord } from '../../../agent/supervisor/engine-outage.js';
import { plan, recordExits } from '../../../agent/supervisor/planner.js';
import { DEFAULT_RESTART_BACKOFF, recordFailure, type BackoffState } from '../../../agent/supervisor/restart-backoff.js';

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
  assert.ok(once, 'once');
  const c = exited('c1', AT - 1_000);
  const actual = { containers: [c], images: { 'img:1': { id: 'sha256:i', digest: null, repoDigests: [] } } };
  const facts = { now: AT + 10_000, scope: 's', restartBackoff: {}, pullBackoff: {}, deviceLabels: new Set<string>(), pullsInFlight: new Set<string>() };

  test('a `restart: no` container the engine stopped is started again; without the outage it stays down', () => {
    assert.deepEqual(plan(actual, [once], { ...facts, resume: new Set(['c1']) }), [{ kind: 'start', service: 'once', container: 'c1', restart: true }]);
    assert.deepEqual(plan(actual, [once], facts), []);
  });
  test('its exit is not counted as a crash', () => {
    const [always] = parseDesiredState({ services: { once: { image: 'img:1', restart: 'always' } } }).services;
    assert.ok(always, 'always');
    const state = { containers: [{ ...c, configHash: configHash(always) }], images: actual.images };
    const counted = recordExits(state, [always], {}, AT, DEFAULT_RESTART_BACKOFF);
    assert.equal(counted.once?.total, 1);
    assert.deepEqual(recordExits(state, [always], {}, AT, DEFAULT_RESTART_BACKOFF, new Set(['c1'])), {});
  });
  test('it is started again in a later pass too while it stays as the engine left it, but not past a back-off', () => {
    const stopped = new Map([['c1', AT - 1_000]]);
    assert.deepEqual(stillStopped(actual, stopped), stopped);
    assert.equal(stillStopped({ ...actual, containers: [{ ...c, status: 'running' }] }, stopped).size, 0, 'running again');
    assert.equal(stillStopped({ ...actual, containers: [{ ...c, finishedAt: AT + 30_000 }] }, stopped).size, 0, 'exited again since, by itself');
    assert.equal(stillStopped({ ...actual, containers: [] }, stopped).size, 0, 'gone');
    // A start of it that failed since is a failure like any other: no hot loop on a container that will not start.
    const failed = { once: recordFailure(undefined, { at: AT + 10_000, key: 'start#1', configHash: configHash(once) }, DEFAULT_RESTART_BACKOFF) };
    assert.deepEqual(plan(actual, [once], { ...facts, resume: new Set(['c1']), restartBackoff: failed }), []);
  });
});

describe('takeBackFailures', () => {
  const outage = { at: AT, windowMs: 6_000 };
  const policy = DEFAULT_RESTART_BACKOFF;
  const old = recordFailure(undefined, { at: AT - 600_000, key: 'x@1', exitCode: 3 }, policy);
  /** Failures counted one after another, each recorded with the entry it replaced. */
  function count(start: BackoffState, failures: { at: number; service: string; key: string }[]): { backoff: BackoffState; records: FailureRecord[] } {
    let backoff = start;
    const records: FailureRecord[] = [];
    for (const f of failures) {
      records.push({ at: f.at, service: f.service, before: backoff[f.service] });
      backoff = { ...backoff, [f.service]: recordFailure(backoff[f.service], { at: f.at, key: f.key }, policy) };
    }
    return { backoff, records };
  }

  test('exits and failed steps within the window are taken back, to the entry from before the window', () => {
    const { backoff, records } = count({ web: old }, [
      { at: AT - 2_000, service: 'web', key: 'c1@2' }, // the engine stopped it
      { at: AT - 1_500, service: 'web', key: 'start#1' }, // "transport is closing"
      { at: AT - 1_000, service: 'worker', key: 'start#2' }, // the network store already closed
    ]);
    assert.equal(backoff.web?.total, 3);
    const next = takeBackFailures(backoff, records, outage);
    assert.deepEqual(next, { web: old });
  });
  test('failures before the window stay; nothing to take back leaves the state as it is', () => {
    const { backoff, records } = count({}, [{ at: AT - 6_001, service: 'web', key: 'c1@1' }]);
    assert.equal(takeBackFailures(backoff, records, outage), backoff);
    assert.equal(takeBackFailures(backoff, [], outage), backoff);
  });
  test('a service that failed again after the window keeps its count', () => {
    const { backoff, records } = count({}, [{ at: AT - 1_000, service: 'web', key: 'c1@1' }, { at: AT + 60_000, service: 'web', key: 'c1@2' }]);
    assert.equal(takeBackFailures(backoff, records, outage), backoff);
  });
});
