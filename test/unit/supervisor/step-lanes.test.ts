import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ActualContainer, ActualState } from '../../../agent/supervisor/actual-state.js';
import { parseDesiredState } from '../../../protocol/compose/compose-schema.js';
import { configHash } from '../../../agent/supervisor/config-hash.js';
import type { DesiredService } from '../../../protocol/compose/desired-service.js';
import { plan, type PlanFacts } from '../../../agent/supervisor/planner.js';
import { dependencyGraph, inLanes, type Lane } from '../../../agent/supervisor/step-lanes.js';

const NOW = 1_800_000_000_000;
const facts: PlanFacts = { now: NOW, scope: 's', restartBackoff: {}, pullBackoff: {}, deviceLabels: new Set(), pullsInFlight: new Set() };

function services(doc: Record<string, Record<string, unknown>>): DesiredService[] {
  return parseDesiredState({ services: doc }).services;
}

/** A running container of `s` with a configuration other than its desired one (an older version). */
function old(s: DesiredService, extra: Partial<ActualContainer> = {}): ActualContainer {
  return {
    id: `old-${s.name}`, name: `s-${s.name}-old`, service: s.name, configHash: `old-${configHash(s)}`, dependsOn: s.dependsOn.map((d) => d.service),
    version: '1', image: s.image, imageId: 'sha256:img', status: 'running', health: 'none', exitCode: null, startedAt: NOW - 60_000, finishedAt: null, ...extra,
  };
}

function world(containers: ActualContainer[], images: string[]): ActualState {
  return { containers, images: Object.fromEntries(images.map((i) => [i, { id: `sha256:${i}`, digest: null, repoDigests: [] }])) };
}

function lanesFor(actual: ActualState, desired: DesiredService[]): Lane[] {
  return inLanes(plan(actual, desired, facts), dependencyGraph(actual, desired), new Set(desired.map((s) => s.name)));
}

const shape = (lanes: Lane[]): Record<string, { steps: string[]; takeDownAfter: string[]; after: string[] }> => Object.fromEntries(lanes.map((l) => [l.service, {
  steps: l.steps.map((s) => s.kind), takeDownAfter: l.takeDownAfter.map((i) => lanes[i]?.service ?? '?'), after: l.after.map((i) => lanes[i]?.service ?? '?'),
}]));

describe('inLanes', () => {
  test('ten independent services updated at once: ten lanes, each its own stop, remove, create and start, none waiting for another', () => {
    const names = Array.from({ length: 10 }, (_, i) => `svc-${i}`);
    const desired = services(Object.fromEntries(names.map((n) => [n, { image: 'img:2', stop_grace_period: '2s' }])));
    const lanes = lanesFor(world(desired.map((s) => old(s)), ['img:2']), desired);
    assert.equal(lanes.length, 10);
    for (const lane of lanes) {
      assert.deepEqual(lane.steps.map((s) => s.kind), ['stop', 'remove', 'create', 'start']);
      assert.deepEqual(lane.takeDownAfter, []);
      assert.deepEqual(lane.after, []);
      assert.ok(lane.steps.every((s) => s.service === lane.service), 'lane.steps.every((s) => s.service === lane.service)');
    }
    const stop = lanes[0]?.steps[0];
    assert.equal(stop?.kind === 'stop' ? stop.timeoutMs : undefined, 2000, 'each stop waits its own service\'s grace');
  });

  test('depends_on: a dependency is taken down only after its dependents, transitively; the dependent waits for its start in a later plan', () => {
    const desired = services({
      db: { image: 'img:2' }, api: { image: 'img:2', depends_on: ['db'] }, web: { image: 'img:2', depends_on: ['api'] }, other: { image: 'img:2' },
    });
    const lanes = lanesFor(world(desired.map((s) => old(s)), ['img:2']), desired);
    assert.deepEqual(shape(lanes), {
      web: { steps: ['stop', 'remove', 'create'], takeDownAfter: [], after: [] },
      api: { steps: ['stop', 'remove', 'create'], takeDownAfter: ['web'], after: [] },
      db: { steps: ['stop', 'remove', 'create', 'start'], takeDownAfter: ['web', 'api'], after: [] },
      other: { steps: ['stop', 'remove', 'create', 'start'], takeDownAfter: [], after: [] },
    });
  });

  test('a dependency whose dependent is unchanged waits for nothing; an unchanged dependency is not in the plan', () => {
    const desired = services({ db: { image: 'img:2' }, web: { image: 'img:2', depends_on: ['db'] } });
    const [db, web] = desired as [DesiredService, DesiredService];
    const current = (s: DesiredService): ActualContainer => old(s, { id: `cur-${s.name}`, configHash: configHash(s) });
    assert.deepEqual(shape(lanesFor(world([old(db), current(web)], ['img:2']), desired)), {
      db: { steps: ['stop', 'remove', 'create', 'start'], takeDownAfter: [], after: [] },
    });
    assert.deepEqual(shape(lanesFor(world([current(db), old(web)], ['img:2']), desired)), {
      web: { steps: ['stop', 'remove', 'create', 'start'], takeDownAfter: [], after: [] },
    });
  });

  test('services no longer desired go first, dependents among them before their dependencies; desired lanes wait for them', () => {
    const before = services({ gone: { image: 'img:1' }, goneDep: { image: 'img:1', depends_on: ['gone'] }, web: { image: 'img:1' } });
    const desired = services({ web: { image: 'img:2' }, www: { image: 'img:2' } });
    const lanes = lanesFor(world(before.map((s) => old(s)), ['img:2']), desired);
    assert.deepEqual(shape(lanes), {
      goneDep: { steps: ['stop', 'remove'], takeDownAfter: [], after: [] },
      gone: { steps: ['stop', 'remove'], takeDownAfter: ['goneDep'], after: [] },
      web: { steps: ['stop', 'remove', 'create', 'start'], takeDownAfter: [], after: ['goneDep', 'gone'] },
      www: { steps: ['create', 'start'], takeDownAfter: [], after: ['goneDep', 'gone'] },
    });
  });

  test('pulls are left out: they run beside the passes', () => {
    const desired = services({ a: { image: 'img:3' }, b: { image: 'img:2' } });
    const lanes = lanesFor(world(desired.map((s) => old(s)), ['img:2']), desired);
    assert.deepEqual(shape(lanes), { b: { steps: ['stop', 'remove', 'create', 'start'], takeDownAfter: [], after: [] } });
  });

  test('dependency labels that form a cycle across versions cannot make lanes wait for each other', () => {
    const [a, b] = services({ a: { image: 'img:1' }, b: { image: 'img:1' } }) as [DesiredService, DesiredService];
    const actual = world([old(a, { dependsOn: ['b'] }), old(b, { dependsOn: ['a'] })], []);
    const lanes = inLanes(plan(actual, [], facts), dependencyGraph(actual, []), new Set());
    assert.equal(lanes.length, 2);
    const edges = lanes.flatMap((l, i) => l.takeDownAfter.map((j) => [i, j]));
    assert.ok(edges.every(([i, j]) => (j ?? 0) < (i ?? 0)), 'every wait points to an earlier lane');
  });
});
