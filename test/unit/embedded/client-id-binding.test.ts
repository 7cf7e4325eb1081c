import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLIENT_ID_PATTERN, isSecretClientId, newSecretClientId } from '../../../protocol/client-id.js';
import { DEVICE_ID_PATTERN } from '../../../protocol/topics.js';
import { boundClientId, clientIdOwners, mayUseClientId } from '../../../provisioning/embedded/client-id-binding.js';

const accounts = [
  ['fleet-x', { role: 'fleet' }],
  ['bootstrap-x', { role: 'bootstrap' }],
  ['d-0000000000', { role: 'device' }],
  ['d-1111111111', { role: 'device', clientId: 'dc-secret-1' }],
] as const;
const owners = clientIdOwners(accounts);
const decide = (username: string, clientId: string): boolean => {
  const account = accounts.find(([name]) => name === username)![1];
  return mayUseClientId({ username, account, clientId, owner: owners.get(clientId) });
};

test('a device account is bound to its grant\'s client id, or to its device id when it has none', () => {
  assert.equal(boundClientId('d-1111111111', { role: 'device', clientId: 'dc-secret-1' }), 'dc-secret-1');
  assert.equal(boundClientId('d-0000000000', { role: 'device' }), 'd-0000000000');
  assert.equal(boundClientId('bootstrap-x', { role: 'bootstrap' }), undefined);
  assert.deepEqual([...owners].sort(), [
    ['d-0000000000', 'd-0000000000'], ['d-1111111111', 'd-1111111111'], ['dc-secret-1', 'd-1111111111'],
  ]);
});

test('only the device itself connects under its client ids; other accounts only under ids no device holds', () => {
  assert.equal(decide('d-1111111111', 'dc-secret-1'), true);
  assert.equal(decide('d-1111111111', 'd-1111111111'), false, 'its public id is not its client id any more');
  assert.equal(decide('d-0000000000', 'd-0000000000'), true);
  for (const attacker of ['fleet-x', 'bootstrap-x', 'd-0000000000']) {
    assert.equal(decide(attacker, 'dc-secret-1'), false, `${attacker} under d-1's secret id`);
    assert.equal(decide(attacker, 'd-1111111111'), false, `${attacker} under d-1's public id`);
  }
  assert.equal(decide('d-1111111111', 'd-0000000000'), false);
  assert.equal(decide('bootstrap-x', 'enroll-0123456789abcdef'), true);
  assert.equal(decide('fleet-x', 'tsunagu-enroll-01234567'), true);
});

test('a secret client id is unguessable, never a device id\'s shape, and carries no topic wildcard', () => {
  const ids = new Set(Array.from({ length: 200 }, () => newSecretClientId()));
  assert.equal(ids.size, 200);
  for (const id of ids) {
    assert.match(id, CLIENT_ID_PATTERN);
    assert.ok(isSecretClientId(id), 'isSecretClientId(id)');
    assert.ok(!/^d-[0-9a-f]+$/.test(id), '!/^d-[0-9a-f]+$/.test(id)');
    assert.ok(!/[+#/]/.test(id), '!/[+#/]/.test(id)');
    assert.ok(id.length >= 3 + 32, 'at least 192 bits in base64url');
  }
  // Device ids (the client id of devices enrolled before) stay accepted.
  assert.match('d-0104ab9319bfed95fbbd', CLIENT_ID_PATTERN);
  assert.ok(!isSecretClientId('d-0104ab9319bfed95fbbd'), "!isSecretClientId('d-0104ab9319bfed95fbbd')");
  for (const bad of ['', 'ab', 'a+b', 'a#b', 'a/b', '-abc', 'a b', 'x'.repeat(129)]) assert.doesNotMatch(bad, CLIENT_ID_PATTERN, bad);
  assert.ok(DEVICE_ID_PATTERN.test('d-0104ab9319bfed95fbbd'), "DEVICE_ID_PATTERN.test('d-0104ab9319bfed95fbbd')");
});
