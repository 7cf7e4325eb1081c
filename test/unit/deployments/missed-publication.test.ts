import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkPublication, RESEND_AFTER_MS } from '../../../provisioning/deployments/missed-publication.js';

const last = { version: 20, publishedAt: 1_000 };

test('a device whose report knows the version, or a later one, did not miss it', () => {
  assert.deepEqual(checkPublication({ desiredVersion: 20, appliedVersion: 10 }, last, 99_000), { kind: 'known' });
  assert.deepEqual(checkPublication({ desiredVersion: null, appliedVersion: 21 }, last, 99_000), { kind: 'known' });
  assert.deepEqual(checkPublication(undefined, last, 99_000), { kind: 'known' }, 'a device that never reported is not judged');
});

test('a report without the version is judged only once the device had time to answer: until then, look again', () => {
  const stale = { desiredVersion: 19, appliedVersion: 19 };
  assert.deepEqual(checkPublication(stale, last, 1_000), { kind: 'recheck', at: 1_000 + RESEND_AFTER_MS }, 'crossed in flight, perhaps');
  assert.deepEqual(checkPublication(stale, last, 1_000 + RESEND_AFTER_MS - 1), { kind: 'recheck', at: 1_000 + RESEND_AFTER_MS });
  assert.deepEqual(checkPublication(stale, last, 1_000 + RESEND_AFTER_MS), { kind: 'missed' });
  assert.deepEqual(checkPublication({ desiredVersion: null, appliedVersion: null }, last, 60_000), { kind: 'missed' }, 'a new device that lost its first version');
});
