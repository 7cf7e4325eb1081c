import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDesiredState } from '../../../protocol/compose/compose-schema.js';
import { evictedServices, NO_EVICTIONS, refreshEvictions, setTiers, type TierEvictions } from '../../../agent/supervisor/evictions.js';

const doc = (services: Record<string, string | undefined>): ReturnType<typeof parseDesiredState>['services'] =>
  parseDesiredState({
    services: Object.fromEntries(Object.entries(services).map(([name, priority]) => [name, { image: 'i', ...(priority === undefined ? {} : { 'x-tsunagu': { priority } }) }])),
  }).services;

test('services are sorted into the evicted tiers by priority; no priority means normal', () => {
  const desired = doc({ db: 'critical', web: undefined, api: 'normal', thumbs: 'best-effort' });
  assert.deepEqual([...evictedServices(desired, { 'best-effort': 'hot' })], [['thumbs', 'hot']]);
  assert.deepEqual(new Map(evictedServices(desired, { 'best-effort': 'hot', normal: 'hotter' })), new Map([['thumbs', 'hot'], ['web', 'hotter'], ['api', 'hotter']]));
});

test('a critical service is never evicted, whatever the tiers say', () => {
  const desired = doc({ db: 'critical' });
  const tiers = { critical: 'a wrong input', normal: 'x', 'best-effort': 'y' } as TierEvictions;
  assert.deepEqual([...evictedServices(desired, tiers)], []);
});

test('changes: evicted and restored services once each; a new desired state is sorted into the current tiers', () => {
  const v1 = doc({ db: 'critical', web: 'normal', thumbs: 'best-effort' });
  let step = setTiers(NO_EVICTIONS, { 'best-effort': 'r1' }, v1);
  assert.deepEqual(step.changes, { evicted: [{ service: 'thumbs', reason: 'r1' }], restored: [] });
  step = setTiers(step.evictions, { 'best-effort': 'r1' }, v1);
  assert.deepEqual(step.changes, { evicted: [], restored: [] }, 'the same tiers again change nothing');
  step = setTiers(step.evictions, { 'best-effort': 'r1', normal: 'r2' }, v1);
  assert.deepEqual(step.changes, { evicted: [{ service: 'web', reason: 'r2' }], restored: [] });
  assert.equal(step.evictions.services.get('web'), 'r2');
  // v2: thumbs is gone (not "restored"), web became critical (restored), a new best-effort service is evicted at once.
  const v2 = doc({ db: 'critical', web: 'critical', batch: 'best-effort' });
  step = refreshEvictions(step.evictions, v2);
  assert.deepEqual(step.changes, { evicted: [{ service: 'batch', reason: 'r1' }], restored: ['web'] });
  step = setTiers(step.evictions, {}, v2);
  assert.deepEqual(step.changes, { evicted: [], restored: ['batch'] });
  assert.equal(step.evictions.services.size, 0);
});
