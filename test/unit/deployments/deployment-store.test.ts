import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isTsunaguError } from '../../../protocol/errors.js';
import { DeploymentStore } from '../../../provisioning/deployments/deployment-store.js';
import { FleetDatabase } from '../../../provisioning/fleet-database.js';

const dir = mkdtempSync(join(tmpdir(), 'tsunagu-depl-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function open(): { path: string; database: FleetDatabase; store: DeploymentStore; close: () => void } {
  const path = join(dir, `fleet-${n++}.db`);
  const database = new FleetDatabase(path);
  const store = new DeploymentStore(database);
  return { path, database, store, close: () => { database.close(); } };
}

const content = { compose: { services: { s: { image: 'r/s:1' } } }, sealedSecrets: null, settings: null };

test('create, update, delete: revisions kept, every change in the audit log', () => {
  const { store, database, close } = open();
  store.create({ name: 'web', selector: { site: 'a' }, priority: 3, strategy: {} }, content, 1000);
  assert.throws(() => store.create({ name: 'web', selector: {}, priority: 0, strategy: {} }, content, 1001), (e) => isTsunaguError(e) && e.code === 'CONFIG');
  const updated = store.update('web', { ...content, settings: { metricsIntervalMs: 60_000 } }, 2000);
  assert.equal(updated.revision, 2);
  assert.deepEqual(store.revision('web', 2)?.settings, { metricsIntervalMs: 60_000 });
  assert.deepEqual(store.revision('web', 1)?.compose, content.compose);
  store.delete('web', 3000);
  assert.equal(store.get('web'), undefined);
  assert.deepEqual(database.auditLog().map((e) => e.event), ['deployment-deleted', 'deployment-updated', 'deployment-created']);
  close();
});

test('the lease: one holder at a time, taken over only once it expires, with a new epoch', () => {
  const { store, close } = open();
  const a = store.acquireLease('l', 'a', 0, 100);
  assert.deepEqual(a, { held: true, epoch: 1, expiresAt: 100 });
  assert.deepEqual(store.acquireLease('l', 'b', 50, 100), { held: false, expiresAt: 100, owner: 'a' });
  assert.deepEqual(store.acquireLease('l', 'a', 60, 100), { held: true, epoch: 1, expiresAt: 160 }, 'a renewal keeps the epoch');
  assert.deepEqual(store.acquireLease('l', 'b', 161, 100), { held: true, epoch: 2, expiresAt: 261 });
  store.releaseLease('l', 'b');
  assert.deepEqual(store.acquireLease('l', 'a', 170, 100), { held: true, epoch: 3, expiresAt: 270 }, 'a released lease is free at once');
  close();
});

test('a publication is recorded only under the lease it was made under (fencing)', () => {
  const { store, close } = open();
  const p = { deviceId: 'd-1', version: 5, hash: 'h', sources: [{ deployment: 'web', revision: 1, services: ['s'] }], conflicts: [], publishedAt: 10 };
  store.acquireLease('l', 'a', 0, 100);
  assert.equal(store.recordPublished(p, [{ deployment: 'web', revision: 1 }], { name: 'l', owner: 'a', epoch: 1 }), true);
  store.acquireLease('l', 'b', 200, 100);
  assert.equal(store.recordPublished({ ...p, version: 6, publishedAt: 210 }, [{ deployment: 'web', revision: 2 }], { name: 'l', owner: 'a', epoch: 1 }), false);
  assert.equal(store.published('d-1')?.version, 5);
  close();
});

test('the first version that carried a revision is kept while the revision stays, replaced when it changes', () => {
  const { store, close } = open();
  store.acquireLease('l', 'a', 0, 1000);
  const lease = { name: 'l', owner: 'a', epoch: 1 };
  const p = { deviceId: 'd-1', hash: 'h', sources: [], conflicts: [], publishedAt: 10 };
  store.recordPublished({ ...p, version: 5 }, [{ deployment: 'web', revision: 1 }, { deployment: 'mon', revision: 1 }], lease);
  store.recordPublished({ ...p, version: 6 }, [{ deployment: 'web', revision: 1 }, { deployment: 'mon', revision: 2 }], lease);
  assert.deepEqual(store.publishedRevisions('web').get('d-1'), { revision: 1, version: 5 });
  assert.deepEqual(store.publishedRevisions('mon').get('d-1'), { revision: 2, version: 6 });
  store.recordPublished({ ...p, version: 7 }, [{ deployment: 'mon', revision: 2 }], lease);
  assert.equal(store.publishedRevisions('web').get('d-1'), undefined, 'a deployment the device left is forgotten');
  close();
});

test('a rollout is saved only if nobody changed it since it was read', () => {
  const { store, close } = open();
  store.create({ name: 'web', selector: {}, priority: 0, strategy: {} }, content, 0);
  assert.equal(store.saveRollout('web', { phase: 'running' }, 0, 1, ['started']), true);
  const row = store.rollout('web')!;
  assert.equal(store.saveRollout('web', { phase: 'paused' }, row.seq, 2, ['paused']), true);
  assert.equal(store.saveRollout('web', { phase: 'running', wave: 1 }, row.seq, 3, []), false, 'a write from a stale read is refused');
  assert.deepEqual(store.rollout('web')?.state, { phase: 'paused' });
  close();
});

test('fleet labels: set and removed per key', () => {
  const { store, close } = open();
  store.setFleetLabels('d-1', { site: 'a', group: 'canary' }, 0);
  assert.deepEqual(store.setFleetLabels('d-1', { group: null, site: 'b' }, 1), { site: 'b' });
  assert.deepEqual(store.fleetLabels().get('d-1'), { site: 'b' });
  close();
});
