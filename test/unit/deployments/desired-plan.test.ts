import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Deployment, DeploymentRevision } from '../../../provisioning/deployments/deployment.js';
import { effectiveLabels, planDevice } from '../../../provisioning/deployments/desired-plan.js';

function deployment(name: string, selector: Record<string, string>, revision = 1): Deployment {
  return { name, selector, priority: 0, strategy: {}, state: 'active', revision, createdAt: 0, updatedAt: 0 };
}
function revision(d: string, n: number, image: string, sealedSecrets: string | null = null): DeploymentRevision {
  return { deployment: d, revision: n, compose: { services: { [d]: { image } } }, sealedSecrets, settings: null, createdAt: 0 };
}

const device = { deviceId: 'd-1', boxPublicKey: 'box-1', labels: { site: 'a' } };

test('only matching deployments contribute, at the revision the rollout gives this device', () => {
  const deployments = [deployment('web', { site: 'a' }, 2), deployment('other', { site: 'b' })];
  const plan = planDevice(device, deployments, (d) => (d.name === 'web' ? revision('web', 1, 'r/web:1') : revision(d.name, 1, 'x')));
  assert.deepEqual(plan.carried, [{ deployment: 'web', revision: 1 }]);
  assert.deepEqual(Object.keys(plan.layered.compose.services as object), ['web']);
});

test('the hash changes with the document, the revision and, when secrets are sealed, the box key; not otherwise', () => {
  const d = [deployment('web', {})];
  const plain = (image: string) => planDevice(device, d, () => revision('web', 1, image)).hash;
  assert.equal(plain('r/web:1'), plain('r/web:1'));
  assert.notEqual(plain('r/web:1'), plain('r/web:2'));
  assert.notEqual(planDevice(device, d, () => revision('web', 2, 'r/web:1')).hash, plain('r/web:1'), 'a new revision, even the same document, is published');
  assert.equal(planDevice({ ...device, boxPublicKey: 'box-2' }, d, () => revision('web', 1, 'r/web:1')).hash, plain('r/web:1'));
  const sealed = (box: string, rev: number) => planDevice({ ...device, boxPublicKey: box }, d, () => revision('web', rev, 'r/web:1', 'sealed')).hash;
  assert.notEqual(sealed('box-1', 1), sealed('box-2', 1), 're-keyed device: secrets sealed again');
  assert.notEqual(sealed('box-1', 1), sealed('box-1', 2), 'a new revision may carry new secrets');
});

test("a deployment that has nothing for this device yet contributes nothing; the fleet's labels win over reported ones", () => {
  assert.deepEqual(planDevice(device, [deployment('web', {})], () => undefined).carried, []);
  assert.deepEqual(effectiveLabels('d-1', { site: 'x', arch: 'arm64', 'tsunagu.device': 'd-2' }, { site: 'a' }), { site: 'a', arch: 'arm64', 'tsunagu.device': 'd-1' });
});
