import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { adoptDesired } from '../../../agent/supervisor/adopt-desired.js';
import { configHash } from '../../../agent/supervisor/config-hash.js';
import { setTiers } from '../../../agent/supervisor/evictions.js';
import { commandTarget } from '../../../agent/supervisor/operator-commands.js';
import { hold, release } from '../../../agent/supervisor/operator-holds.js';
import { observe } from '../../../agent/supervisor/observe.js';
import { newRollout } from '../../../agent/supervisor/rollout-gate.js';
import { settleStep } from '../../../agent/supervisor/settle-step.js';
import { nextWakeAt } from '../../../agent/supervisor/wake-time.js';
import { snapshot, type SnapshotFacts } from '../../../agent/supervisor/workload-snapshot.js';
import { isTsunaguError } from '../../../protocol/errors.js';
import { actual, adopted, container, desiredState, exitedAt, NOW, POLICIES, RESTART, service } from '../../support/supervisor-fixtures.js';

const v1 = desiredState({ web: { image: 'web:1', restart: 'always' }, thumbs: { image: 'thumbs:1', restart: 'always', 'x-tsunagu': { priority: 'best-effort' } } });
const facts = (a: ReturnType<typeof actual>, busy = false): SnapshotFacts => ({ actual: a, previous: [], busy, engineError: null, deviceLabels: new Set(), pullsInFlight: new Set(), now: NOW });

describe('holds', () => {
  test('an operator hold lasts for the version it was made under; another version releases it', () => {
    const held = { ...adopted(v1), holds: hold(adopted(v1).holds, 'web', '1') };
    assert.deepEqual([...adoptDesired(held, v1, '1').memory.holds.services], ['web'], 'the same version again (a restart) keeps it');
    assert.equal(adoptDesired(held, v1, '2').memory.holds.services.size, 0);
    assert.equal(release(held.holds, 'web').services.size, 0);
    assert.equal(release(held.holds, 'db'), held.holds, 'no change: the same value, nothing to persist');
  });

  test('a held service is reported stopped and its exit not counted', () => {
    const m = { ...adopted(v1), holds: hold(adopted(v1).holds, 'web', '1') };
    const stopped = actual(exitedAt(container(service(v1, 'web')), NOW - 1_000, 137), container(service(v1, 'thumbs')));
    assert.equal(observe(m, stopped, { now: NOW, busy: new Set(), restartPolicy: RESTART }).memory.restartBackoff.web, undefined);
    assert.equal(snapshot(m, facts(stopped)).state.services.find((s) => s.name === 'web')?.state, 'stopped');
  });
});

describe('evictions', () => {
  test('tiers evict their services with a reason and restore them; a new version is sorted in at once', () => {
    const m = adopted(v1);
    const hot = setTiers(m.evictions, { 'best-effort': 'memory 95% > 90%' }, v1.services);
    assert.deepEqual([...hot.evictions.services], [['thumbs', 'memory 95% > 90%']]);
    const evicted = { ...m, evictions: hot.evictions };
    assert.throws(() => commandTarget(evicted, 'thumbs', true), (e) => isTsunaguError(e, 'PRESSURE_EVICTED'));
    assert.equal(commandTarget(evicted, 'thumbs', false).name, 'thumbs', 'a stop is not refused');
    const v2 = desiredState({ web: { image: 'web:1', 'x-tsunagu': { priority: 'best-effort' } } });
    assert.deepEqual(adoptDesired(evicted, v2, '2').events, [{ type: 'evicted', service: 'web', reason: 'memory 95% > 90%' }]);
    assert.equal(snapshot(evicted, facts(actual(container(service(v1, 'web'))))).state.services.find((s) => s.name === 'thumbs')?.state, 'evicted');
  });

  test('an unknown service is refused', () => {
    assert.throws(() => commandTarget(adopted(v1), 'nope', false), (e) => isTsunaguError(e, 'UNKNOWN_SERVICE'));
  });
});

describe('a new desired state', () => {
  test('forgets the previous version\'s errors, failed pulls, recoveries and probations; keeps the crash back-off', () => {
    let m = adopted(v1);
    m = settleStep(m, { kind: 'pull', service: 'web', image: 'web:1' }, { kind: 'failed', code: 'PULL_FAILED', message: 'x' }, NOW, POLICIES).memory;
    m = settleStep(m, { kind: 'start', service: 'web', container: 'c', restart: true }, { kind: 'failed', code: 'RUNTIME_FAILED', message: 'y' }, NOW, POLICIES).memory;
    const next = adoptDesired(m, v1, '2').memory;
    assert.deepEqual(next.pullBackoff, {});
    assert.equal(next.lastErrors.size, 0);
    assert.equal(next.restartBackoff.web, m.restartBackoff.web);
    assert.equal(next.version, '2');
  });
});

describe('the reported state', () => {
  const web = service(v1, 'web');
  const thumbs = service(v1, 'thumbs');
  const running = actual(container(web), container(thumbs));

  test('converged and nothing on probation: synced, and the version is proven once', () => {
    const first = snapshot(adopted(v1, '1', { probationMs: 10_000 }), facts(running));
    assert.equal(first.state.status, 'synced');
    assert.equal(first.proven, '1');
    assert.equal(snapshot(first.memory, facts(running)).proven, undefined, 'no news the second time');
  });

  test('converged but on probation: applying; a failed probation fails the version even where the rollback ran well', () => {
    const m = adopted(v1, '2', { probationMs: 10_000 });
    const onProbation = { ...m, rollout: { ...newRollout(10_000), probation: new Map([['web', configHash(web)]]) } };
    assert.equal(snapshot(onProbation, facts(running)).state.status, 'applying');
    const failed = { ...m, rollout: { ...newRollout(10_000), failed: new Map([['web', { service: 'web', reason: 'exited', previous: web, previousVersion: '1' }]]) } };
    const s = snapshot(failed, facts(running));
    assert.equal(s.state.status, 'failed');
    assert.equal(s.state.error?.code, 'PROBATION_FAILED');
    assert.equal(s.proven, undefined);
  });

  test('the engine unreadable: the services as last reported, the engine\'s error', () => {
    const s = snapshot(adopted(v1), { ...facts(running), actual: undefined, engineError: { code: 'RUNTIME_UNAVAILABLE', message: 'gone' } });
    assert.equal(s.state.error?.code, 'RUNTIME_UNAVAILABLE');
  });
});

describe('when the next pass is due', () => {
  test('the earliest end of a back-off, a probation or an engine retry; nothing to wait for: no wake', () => {
    const m = adopted(v1);
    const at = (now: number, engineFailures = 0): { decidedAt: number; now: number; engineFailures: number } => ({ decidedAt: NOW, now, engineFailures });
    assert.equal(nextWakeAt(m, at(NOW)), undefined);
    const backingOff = settleStep(m, { kind: 'start', service: 'web', container: 'c', restart: true }, { kind: 'failed', code: 'RUNTIME_FAILED', message: 'y' }, NOW, POLICIES).memory;
    assert.equal(nextWakeAt(backingOff, at(NOW)), NOW + 1000);
    assert.equal(nextWakeAt({ ...backingOff, probationCheckAt: NOW + 300 }, at(NOW)), NOW + 300);
    assert.equal(nextWakeAt(m, at(NOW, 2)), NOW + 2000, 'an unreachable engine: 1 s doubling');
  });

  test('a probation or back-off that ended between the judgement and the scheduling is still due (it was judged not over)', () => {
    const m = adopted(v1);
    const onProbation = { ...m, probationCheckAt: NOW + 10 };
    assert.equal(nextWakeAt(onProbation, { decidedAt: NOW, now: NOW + 25, engineFailures: 0 }), NOW + 10, 'due at once: the next pass passes it');
    const backingOff = settleStep(m, { kind: 'start', service: 'web', container: 'c', restart: true }, { kind: 'failed', code: 'RUNTIME_FAILED', message: 'y' }, NOW, POLICIES).memory;
    assert.equal(nextWakeAt(backingOff, { decidedAt: NOW, now: NOW + 1500, engineFailures: 0 }), NOW + 1000);
    assert.equal(nextWakeAt(onProbation, { decidedAt: NOW + 10, now: NOW + 25, engineFailures: 0 }), undefined, 'judged at its end: nothing left to wait for');
  });
});
