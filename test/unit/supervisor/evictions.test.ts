import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDesiredState } from '../../../protocol/compose/compose-schema.js';
import { Evictions, evictedServices, type TierEvictions } from '../../../agent/supervisor/evictions.js';

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
  const e = new Evictions();
  const v1 = doc({ db: 'critical', web: 'normal', thumbs: 'best-effort' });
  assert.deepEqual(e.setTiers({ 'best-effort': 'r1' }, v1), { evicted: [{ service: 'thumbs', reason: 'r1' }], restored: [] });
  assert.deepEqual(e.setTiers({ 'best-effort': 'r1' }, v1), { evicted: [], restored: [] }, 'the same tiers again change nothing');
  assert.deepEqual(e.setTiers({ 'best-effort': 'r1', normal: 'r2' }, v1), { evicted: [{ service: 'web', reason: 'r2' }], restored: [] });
  assert.equal(e.reasonFor('web'), 'r2');
  // v2: thumbs is gone (not "restored"), web became critical (restored), a new best-effort service is evicted at once.
  const v2 = doc({ db: 'critical', web: 'critical', batch: 'best-effort' });
  assert.deepEqual(e.refresh(v2), { evicted: [{ service: 'batch', reason: 'r1' }], restored: ['web'] });
  assert.deepEqual(e.setTiers({}, v2), { evicted: [], restored: ['batch'] });
  assert.equal(e.services.size, 0);
});
