import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { configHash } from '../../../agent/supervisor/config-hash.js';
import { observe, planFacts } from '../../../agent/supervisor/observe.js';
import { pullResult, settleStep } from '../../../agent/supervisor/settle-step.js';
import type { Step } from '../../../agent/supervisor/steps.js';
import { noteUpdates, pullRequest } from '../../../agent/supervisor/update-switching.js';
import { snapshot } from '../../../agent/supervisor/workload-snapshot.js';
import { TsunaguError } from '../../../protocol/errors.js';
import { actual, adopted, container, desiredState, NOW, POLICIES, RESTART, service } from '../../support/supervisor-fixtures.js';

const v1 = desiredState({ web: { image: 'web:1', restart: 'always' } });
const v2 = desiredState({ web: { image: 'web:2', restart: 'always' } });
const pull: Extract<Step, { kind: 'pull' }> = { kind: 'pull', service: 'web', image: 'web:2' };

describe('failed steps', () => {
  test('a failed pull keeps what runs and waits with the pull back-off; a success forgets the count', () => {
    const failed = settleStep(adopted(v2, '2'), pull, { kind: 'failed', code: 'PULL_FAILED', message: 'manifest unknown' }, NOW, POLICIES);
    assert.deepEqual(failed.events, [{ type: 'pull-failed', service: 'web', image: 'web:2', code: 'PULL_FAILED', error: 'manifest unknown', retryAt: NOW + 500 }]);
    assert.equal(failed.memory.restartBackoff.web, undefined, 'no crash');
    assert.equal(failed.memory.lastErrors.get('web')?.code, 'PULL_FAILED');
    const pulled = settleStep(failed.memory, pull, { kind: 'done' }, NOW + 600, POLICIES);
    assert.deepEqual(pulled.events, [{ type: 'pulled', service: 'web', image: 'web:2' }]);
    assert.equal(pulled.memory.pullBackoff['web:2']?.nextAttemptAt, 0);
    assert.equal(pulled.memory.lastErrors.has('web'), false);
  });

  test('any other failed step puts the service into crash-loop back-off for its configuration', () => {
    const hash = configHash(service(v2, 'web'));
    const create: Step = { kind: 'create', service: 'web', name: 't-web', configHash: hash, desired: service(v2, 'web') };
    const failed = settleStep(adopted(v2, '2'), create, { kind: 'failed', code: 'RUNTIME_FAILED', message: 'no such network' }, NOW, POLICIES);
    assert.equal(failed.memory.restartBackoff.web?.configHash, hash);
    assert.equal(failed.memory.failureRecords.length, 1, 'remembered: an engine outage may take it back');
    assert.equal(failed.events[0]?.type, 'step-failed');
  });

  test('a guard that finds the disk short even without the old image fails the pull with NO_SPACE', () => {
    assert.deepEqual(pullResult(pull, { kind: 'short', reason: '10 MiB missing' }), { kind: 'failed', code: 'NO_SPACE', message: 'pull web:2: 10 MiB missing' });
    assert.deepEqual(pullResult(pull, { kind: 'failed', error: new TsunaguError('PULL_FAILED', 'x') }), { kind: 'failed', code: 'PULL_FAILED', message: 'x' });
  });
});

describe('update switching', () => {
  const old = container(service(v1, 'web'));

  test('a short disk switches the update to kill-then-download: the planner stops the old container first, the report says why', () => {
    let m = adopted(v2, '2');
    m = { ...m, updates: noteUpdates(m.updates, actual(old), [pull]) };
    assert.deepEqual(m.updates.get('web'), { oldImages: ['web:1'] });
    assert.deepEqual(pullRequest(pull, service(v2, 'web'), m.updates.get('web'), undefined), { service: 'web', image: 'web:2', oldImages: ['web:1'], oldContainersGone: true });
    const switched = settleStep(m, pull, { kind: 'kill-first', reason: 'needs 40 MiB, 10 MiB free' }, NOW, POLICIES);
    assert.deepEqual(switched.events, [{ type: 'update-switched', service: 'web', image: 'web:2', strategy: 'kill-then-download', reason: 'needs 40 MiB, 10 MiB free' }]);
    const seen = observe(switched.memory, actual(old), { now: NOW, busy: new Set(), restartPolicy: RESTART });
    const facts = planFacts(seen.memory, seen, { now: NOW, scope: 't', deviceLabels: new Set(), pullsInFlight: new Set() });
    assert.deepEqual([...(facts.killFirst ?? [])], ['web']);
    const report = snapshot(seen.memory, { actual: actual(old), previous: [], busy: true, engineError: null, deviceLabels: new Set(), pullsInFlight: new Set(), now: NOW });
    assert.deepEqual(report.state.services[0]?.updateSwitch, { strategy: 'kill-then-download', reason: 'needs 40 MiB, 10 MiB free' });
    // The new container exists: the update is done, the switch forgotten.
    const createStep: Step = { kind: 'create', service: 'web', name: 't-web', configHash: configHash(service(v2, 'web')), desired: service(v2, 'web') };
    assert.equal(settleStep(switched.memory, createStep, { kind: 'done' }, NOW, POLICIES).memory.updates.has('web'), false);
  });
});
