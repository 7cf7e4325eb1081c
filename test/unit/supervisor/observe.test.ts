import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { configHash } from '../../../agent/supervisor/config-hash.js';
import { observe, planFacts } from '../../../agent/supervisor/observe.js';
import { hold } from '../../../agent/supervisor/operator-holds.js';
import { plan } from '../../../agent/supervisor/planner.js';
import { created, newRollout } from '../../../agent/supervisor/rollout-gate.js';
import { engineLost, type SupervisorMemory } from '../../../agent/supervisor/supervisor-memory.js';
import { settleStep } from '../../../agent/supervisor/settle-step.js';
import { setTiers } from '../../../agent/supervisor/evictions.js';
import { actual, adopted, container, desiredState, exitedAt, NOW, POLICIES, RESTART, service } from '../../support/supervisor-fixtures.js';

const facts = (now = NOW, busy: string[] = []): { now: number; busy: ReadonlySet<string>; restartPolicy: typeof RESTART } => ({ now, busy: new Set(busy), restartPolicy: RESTART });

describe('crash counting and back-off', () => {
  const desired = desiredState({ web: { image: 'web:1', restart: 'always' } });
  const web = service(desired, 'web');
  const crashed = actual(exitedAt(container(web), NOW - 1_000, 3));

  test('an exit the restart policy answers is a crash: counted once, with a backoff event, and the planner waits', () => {
    const seen = observe(adopted(desired), crashed, facts());
    const entry = seen.memory.restartBackoff.web;
    assert.equal(entry?.failures, 1);
    assert.equal(entry?.configHash, configHash(web));
    assert.deepEqual(seen.events, [{ type: 'backoff', service: 'web', restartCount: 1, exitCode: 3, retryAt: NOW + 1000 }]);
    assert.deepEqual(plan(crashed, desired.services, planFacts(seen.memory, seen, { now: NOW, scope: 't', deviceLabels: new Set(), pullsInFlight: new Set() })), []);
    const again = observe(seen.memory, crashed, facts(NOW + 500));
    assert.equal(again.memory.restartBackoff.web, entry, 'the same exit seen again is not counted again');
    assert.deepEqual(again.events, []);
  });

  test('each new exit doubles the wait, up to the cap', () => {
    let m = adopted(desired);
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      const at = NOW + i * 10_000;
      m = observe(m, actual(exitedAt(container(web, { id: `c${i}`, startedAt: at - 300 }), at - 100)), facts(at)).memory;
      waits.push((m.restartBackoff.web?.nextAttemptAt ?? 0) - at);
    }
    assert.deepEqual(waits, [1000, 2000, 4000, 4000]);
  });

  test('an exit of a held, busy or evicted service is no crash', () => {
    const held = { ...adopted(desired), holds: hold(adopted(desired).holds, 'web', '1') };
    assert.equal(observe(held, crashed, facts()).memory.restartBackoff.web, undefined);
    assert.equal(observe(adopted(desired), crashed, facts(NOW, ['web'])).memory.restartBackoff.web, undefined);
    const m = adopted(desiredState({ web: { image: 'web:1', restart: 'always', 'x-tsunagu': { priority: 'best-effort' } } }));
    const evicted = { ...m, evictions: setTiers(m.evictions, { 'best-effort': 'hot' }, m.desired?.services ?? []).evictions };
    assert.equal(observe(evicted, crashed, facts()).memory.restartBackoff.web, undefined);
  });

  test('the memory given is never changed', () => {
    const m = adopted(desired);
    observe(m, crashed, facts());
    assert.deepEqual(m.restartBackoff, {});
    assert.deepEqual(m.failureRecords, []);
  });
});

describe('failures taken back after an engine outage', () => {
  const desired = desiredState({ web: { image: 'web:1', restart: 'always', stop_grace_period: '10s' }, job: { image: 'job:1', restart: 'no' } });
  const web = service(desired, 'web');
  const job = service(desired, 'job');

  test('exits and failed steps within the shutdown window are not counted, and the stopped containers are started again', () => {
    let m: SupervisorMemory = adopted(desired);
    // The engine stops its containers, then fails a step on its way down, then its event stream ends.
    const stopped = actual(exitedAt(container(web), NOW - 2_000, 143), exitedAt(container(job), NOW - 2_000, 143));
    m = observe(m, stopped, facts(NOW - 1_500)).memory;
    assert.equal(m.restartBackoff.web?.failures, 1, 'counted while the engine was thought up');
    m = settleStep(m, { kind: 'start', service: 'web', container: container(web).id, restart: true }, { kind: 'failed', code: 'RUNTIME_FAILED', message: 'transport is closing' }, NOW - 1_000, POLICIES).memory;
    assert.equal(m.restartBackoff.web?.failures, 2);
    m = engineLost(m, NOW);
    assert.deepEqual(m.outage, { at: NOW, windowMs: 15_000 });
    const back = observe(m, stopped, facts(NOW + 20_000));
    assert.equal(back.memory.restartBackoff.web, undefined, 'both failures taken back');
    assert.equal(back.memory.outage, undefined);
    assert.deepEqual([...back.resume].sort(), [container(job).id, container(web).id].sort());
    assert.ok(back.notes.some((n) => n.msg === 'failures seen while the engine went down are not counted'), "back.notes.some((n) => n.msg === 'failures seen while the engine went down are not counted')");
    const steps = plan(stopped, desired.services, planFacts(back.memory, back, { now: NOW + 20_000, scope: 't', deviceLabels: new Set(), pullsInFlight: new Set() }));
    assert.deepEqual(steps.map((s) => `${s.kind} ${s.service}`).sort(), ['start job', 'start web'], 'a `restart: no` job is started again too');
  });

  test('the stopped containers stay to be started across passes until they run again', () => {
    const stopped = actual(exitedAt(container(job), NOW - 2_000, 143));
    const first = observe(engineLost(adopted(desired), NOW), stopped, facts(NOW + 1_000));
    assert.equal(first.resume.size, 1);
    assert.equal(observe(first.memory, stopped, facts(NOW + 2_000)).resume.size, 1, 'its start failed once: still to be started');
    assert.equal(observe(first.memory, actual(container(job)), facts(NOW + 3_000)).resume.size, 0);
  });

  test('a failure after the window (the service failing on its own, later) is kept', () => {
    let m = engineLost(adopted(desired), NOW);
    m = observe(m, actual(container(web)), facts(NOW + 1_000)).memory;
    const later = observe(m, actual(exitedAt(container(web, { startedAt: NOW + 30_000 }), NOW + 40_000)), facts(NOW + 40_000));
    assert.equal(later.memory.restartBackoff.web?.failures, 1);
  });
});

describe('stale runtime state', () => {
  const desired = desiredState({ web: { image: 'web:1', restart: 'always' } });
  const web = service(desired, 'web');
  const c = container(web, { status: 'created', startedAt: null });

  test('a start refused on stale state is no crash: the container is replaced once the recovery back-off allows', () => {
    const start = { kind: 'start', service: 'web', container: c.name, restart: true } as const;
    const failed = settleStep(adopted(desired), start, { kind: 'stale-runtime', message: 'task abc: already exists' }, NOW, POLICIES);
    assert.equal(failed.memory.restartBackoff.web, undefined);
    assert.equal(failed.memory.recoveryBackoff.web?.nextAttemptAt, NOW + 1000);
    assert.equal(failed.memory.lastErrors.get('web')?.code, 'RUNTIME_FAILED');
    assert.equal(failed.events[0]?.type, 'step-failed');
    // Marked under the name of a container just created: the next observation finds its id.
    const seen = observe(failed.memory, actual(c), facts(NOW + 1_000));
    assert.deepEqual([...seen.staleRuntime], [c.id]);
    const steps = plan(actual(c), desired.services, planFacts(seen.memory, seen, { now: NOW + 1_000, scope: 't', deviceLabels: new Set(), pullsInFlight: new Set() }));
    assert.deepEqual(steps.map((s) => s.kind), ['remove', 'create', 'start']);
    const removed = settleStep(seen.memory, { kind: 'remove', service: 'web', containerId: c.id }, { kind: 'done' }, NOW + 1_000, POLICIES);
    assert.deepEqual(removed.events, [{ type: 'recreated', service: 'web', containerId: c.id, reason: 'task abc: already exists' }]);
    assert.equal(removed.memory.staleRuntime.size, 0);
  });

  test('a mark whose container is gone is dropped', () => {
    const failed = settleStep(adopted(desired), { kind: 'start', service: 'web', container: c.id, restart: true }, { kind: 'stale-runtime', message: 'id already in use' }, NOW, POLICIES);
    assert.equal(observe(failed.memory, actual(), facts()).memory.staleRuntime.size, 0);
  });
});

describe('probation', () => {
  const v1 = desiredState({ web: { image: 'web:1', restart: 'always' } });
  const v2 = desiredState({ web: { image: 'web:2', restart: 'always' } });
  const P = 10_000;
  const onProbation = (): SupervisorMemory => {
    const m = adopted(v2, '2', { probationMs: P });
    const rollout = created({ ...newRollout(P), lastGood: { version: '1', services: new Map([['web', { hash: configHash(service(v1, 'web')), spec: service(v1, 'web') }]]) } }, 'web', configHash(service(v2, 'web')));
    return { ...m, rollout, resumeProbations: false };
  };

  test('a crash within the window, once it has stood for the settle time, rolls the service back to the last good configuration', () => {
    const crashed = actual(exitedAt(container(service(v2, 'web'), { startedAt: NOW - 1_000, version: '2' }), NOW - 500));
    const first = observe(onProbation(), crashed, facts());
    assert.equal(first.events.some((e) => e.type === 'probation-failed'), false, 'a suspect first: an engine going down looks the same');
    // Settled after the engine's shutdown window: the default stop grace of 10 s and 5 s.
    assert.equal(first.memory.probationCheckAt, NOW + 15_000);
    const later = observe(first.memory, crashed, facts(NOW + 15_000));
    assert.deepEqual(later.events.filter((e) => e.type === 'probation-failed'), [{ type: 'probation-failed', service: 'web', reason: 'exited with code 1 within the probation window (10 s)', version: '2', rolledBackTo: '1' }]);
    assert.equal(later.memory.desired?.services[0]?.image, 'web:1');
  });

  test('a service that runs out its window passes', () => {
    const running = actual(container(service(v2, 'web'), { startedAt: NOW - P, version: '2' }));
    const seen = observe(onProbation(), running, facts());
    assert.equal(seen.memory.rollout.probation.size, 0);
    assert.equal(seen.memory.rollout.failed.size, 0);
    assert.equal(seen.memory.desired?.services[0]?.image, 'web:2');
  });

  test('after an agent restart the probation of a container this version created is resumed', () => {
    const m = { ...adopted(v2, '2', { probationMs: P }), rollout: { ...newRollout(P), lastGood: onProbation().rollout.lastGood } };
    const seen = observe(m, actual(container(service(v2, 'web'), { startedAt: NOW - 1_000, version: '2' })), facts());
    assert.equal(seen.memory.resumeProbations, false);
    assert.equal(seen.memory.probationCheckAt, NOW - 1_000 + P);
  });
});
