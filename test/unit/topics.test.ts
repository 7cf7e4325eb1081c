import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  allDevicesTopic, DEVICE_ID_PATTERN, DEVICE_INBOUND, DEVICE_OUTBOUND, deviceTopic, enrollTopics, parseDeviceTopic, REQUEST_ID_PATTERN,
} from '../../protocol/topics.js';
import { bootstrapRole, deviceRole } from '../../provisioning/broker-roles.js';
import { deriveDeviceId } from '../../provisioning/fleet-database.js';

const deviceId = 'd-0123456789abcdef0123';

test('the enrollment topics', () => {
  assert.equal(enrollTopics.request, 'tsunagu/enroll/request');
  assert.equal(enrollTopics.requestShared, '$share/tsunagu-enroll/tsunagu/enroll/request');
  assert.equal(enrollTopics.response('0123456789abcdef0123456789abcdef'), 'tsunagu/enroll/response/0123456789abcdef0123456789abcdef');
  assert.equal(enrollTopics.responseFilter, 'tsunagu/enroll/response/+');
});

test('device topics and the fleet-side filters', () => {
  assert.equal(deviceTopic(deviceId, 'cmd'), `tsunagu/devices/${deviceId}/cmd`);
  assert.equal(deviceTopic(deviceId, 'status'), `tsunagu/devices/${deviceId}/status`);
  assert.equal(allDevicesTopic('status'), 'tsunagu/devices/+/status');
  assert.equal(allDevicesTopic('#'), 'tsunagu/devices/+/#');
  assert.deepEqual([...DEVICE_INBOUND], ['cmd', 'desired']);
  assert.deepEqual([...DEVICE_OUTBOUND], ['status', 'reply', 'state', 'inventory', 'metrics', 'events']);
});

test('parseDeviceTopic inverts deviceTopic for every kind', () => {
  for (const kind of [...DEVICE_INBOUND, ...DEVICE_OUTBOUND]) {
    assert.deepEqual(parseDeviceTopic(deviceTopic(deviceId, kind)), { deviceId, kind });
  }
});

test('parseDeviceTopic refuses anything else', () => {
  for (const topic of [
    'tsunagu/devices/ab/cmd', // id too short (3 to 64 characters)
    `tsunagu/devices/${deviceId}/cmd/extra`,
    `tsunagu/devices/${deviceId}`,
    `tsunagu/devices/${deviceId}/shell`,
    `tsunagu/devices/${deviceId}/+`,
    `other/devices/${deviceId}/cmd`,
    `tsunagu/device/${deviceId}/cmd`,
    'tsunagu/devices/+/cmd',
    'tsunagu/devices/#/cmd',
    'tsunagu/devices/D-ABC/cmd',
    'tsunagu/devices/-abc/cmd',
    `tsunagu/devices/${'a'.repeat(65)}/cmd`,
    'tsunagu/enroll/request',
    '',
  ]) {
    assert.equal(parseDeviceTopic(topic), undefined, topic);
  }
});

test('no id that passes the patterns can carry a wildcard, a separator or a NUL', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 70 }), (id) => {
      if (DEVICE_ID_PATTERN.test(id)) assert.doesNotMatch(id, /[+#/\0]/);
      if (REQUEST_ID_PATTERN.test(id)) assert.match(id, /^[0-9a-f]{32}$/);
    }),
    { numRuns: 2000 },
  );
  assert.equal(DEVICE_ID_PATTERN.test('abc'), true);
  assert.equal(DEVICE_ID_PATTERN.test('a'.repeat(64)), true);
  assert.equal(DEVICE_ID_PATTERN.test('a'.repeat(65)), false);
  assert.equal(DEVICE_ID_PATTERN.test('ab'), false);
});

test('device ids derived from keys are valid topic segments', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (key) => {
      const id = deriveDeviceId(Buffer.from(key).toString('base64'));
      assert.match(id, /^d-[0-9a-f]{20}$/);
      assert.deepEqual(parseDeviceTopic(deviceTopic(id, 'status')), { deviceId: id, kind: 'status' });
    }),
    { numRuns: 200 },
  );
});

test('a device role lists only its own literal topics', () => {
  const role = deviceRole(deviceId);
  assert.equal(role.rolename, `tsunagu-device-${deviceId}`);
  for (const acl of role.acls) {
    assert.equal(acl.allow, true);
    assert.doesNotMatch(acl.topic, /[+#]/);
    assert.ok(acl.topic.startsWith(`tsunagu/devices/${deviceId}/`), acl.topic);
  }
  const sends = role.acls.filter((a) => a.acltype === 'publishClientSend').map((a) => parseDeviceTopic(a.topic)?.kind);
  assert.deepEqual(sends, [...DEVICE_OUTBOUND]);
  const subscribes = role.acls.filter((a) => a.acltype === 'subscribeLiteral').map((a) => parseDeviceTopic(a.topic)?.kind);
  assert.deepEqual(subscribes, [...DEVICE_INBOUND]);
});

test('the bootstrap role reaches the enrollment topics only', () => {
  for (const acl of bootstrapRole().acls) assert.ok(acl.topic.startsWith('tsunagu/enroll/'), acl.topic);
  assert.deepEqual(bootstrapRole().acls.filter((a) => a.acltype === 'publishClientSend').map((a) => a.topic), ['tsunagu/enroll/request']);
});
