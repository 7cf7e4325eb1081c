import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bootstrapRole, deviceRole, fleetRole } from '../../../provisioning/broker-roles.js';
import { aclAllows, aclTopicMatches, isPlainName, unshareFilter } from '../../../provisioning/embedded/acl-check.js';
import { deviceTopic, enrollTopics } from '../../../protocol/topics.js';

test('ACL topics match like MQTT filters, with the other side taken literally', () => {
  assert.ok(aclTopicMatches('tsunagu/#', 'tsunagu/devices/d-1/cmd'), "aclTopicMatches('tsunagu/#', 'tsunagu/devices/d-1/cmd')");
  assert.ok(aclTopicMatches('tsunagu/#', 'tsunagu'), "aclTopicMatches('tsunagu/#', 'tsunagu')");
  assert.ok(aclTopicMatches('tsunagu/enroll/response/+', 'tsunagu/enroll/response/abc'), "aclTopicMatches('tsunagu/enroll/response/+', 'tsunagu/enroll/response/abc')");
  assert.ok(aclTopicMatches('tsunagu/enroll/response/+', 'tsunagu/enroll/response/+'), "aclTopicMatches('tsunagu/enroll/response/+', 'tsunagu/enroll/response/+')");
  assert.ok(!aclTopicMatches('tsunagu/enroll/response/+', 'tsunagu/enroll/response/a/b'), "!aclTopicMatches('tsunagu/enroll/response/+', 'tsunagu/enroll/response/a/b')");
  assert.ok(!aclTopicMatches('tsunagu/devices/d-1/cmd', 'tsunagu/devices/+/cmd'), "!aclTopicMatches('tsunagu/devices/d-1/cmd', 'tsunagu/devices/+/cmd')");
  assert.ok(!aclTopicMatches('tsunagu/devices/d-1/cmd', 'tsunagu/devices/d-1/#'), "!aclTopicMatches('tsunagu/devices/d-1/cmd', 'tsunagu/devices/d-1/#')");
  assert.ok(!aclTopicMatches('#', '$SYS/broker/uptime'), "!aclTopicMatches('#', '$SYS/broker/uptime')");
  assert.ok(!aclTopicMatches('+/x', '$share/x'), "!aclTopicMatches('+/x', '$share/x')");
  assert.ok(aclTopicMatches('$share/+/tsunagu/#', '$share/g/tsunagu/enroll/request'), "aclTopicMatches('$share/+/tsunagu/#', '$share/g/tsunagu/enroll/request')");
});

test('a device role allows its own topics only, literal subscriptions only', () => {
  const roles = [deviceRole('d-aaaa')];
  assert.ok(aclAllows(roles, 'publishClientSend', deviceTopic('d-aaaa', 'status')), "aclAllows(roles, 'publishClientSend', deviceTopic('d-aaaa', 'status'))");
  assert.ok(!aclAllows(roles, 'publishClientSend', deviceTopic('d-bbbb', 'status')), "!aclAllows(roles, 'publishClientSend', deviceTopic('d-bbbb', 'status'))");
  assert.ok(!aclAllows(roles, 'publishClientSend', deviceTopic('d-aaaa', 'cmd')), "!aclAllows(roles, 'publishClientSend', deviceTopic('d-aaaa', 'cmd'))");
  assert.ok(aclAllows(roles, 'subscribe', deviceTopic('d-aaaa', 'cmd')), "aclAllows(roles, 'subscribe', deviceTopic('d-aaaa', 'cmd'))");
  assert.ok(!aclAllows(roles, 'subscribe', 'tsunagu/devices/+/cmd'), "!aclAllows(roles, 'subscribe', 'tsunagu/devices/+/cmd')");
  assert.ok(!aclAllows(roles, 'subscribe', '#'), "!aclAllows(roles, 'subscribe', '#')");
  assert.ok(aclAllows(roles, 'publishClientReceive', deviceTopic('d-aaaa', 'desired')), "aclAllows(roles, 'publishClientReceive', deviceTopic('d-aaaa', 'desired'))");
  assert.ok(!aclAllows(roles, 'publishClientReceive', deviceTopic('d-aaaa', 'status')), "!aclAllows(roles, 'publishClientReceive', deviceTopic('d-aaaa', 'status'))");
  assert.ok(!aclAllows(roles, 'publishClientSend', '$CONTROL/dynamic-security/v1'), "!aclAllows(roles, 'publishClientSend', '$CONTROL/dynamic-security/v1')");
});

test('the bootstrap role can only enroll; the fleet role reaches the tsunagu tree and the control topic', () => {
  const boot = [bootstrapRole()];
  assert.ok(aclAllows(boot, 'publishClientSend', enrollTopics.request), "aclAllows(boot, 'publishClientSend', enrollTopics.request)");
  assert.ok(aclAllows(boot, 'subscribe', enrollTopics.response('0'.repeat(32))), "aclAllows(boot, 'subscribe', enrollTopics.response('0'.repeat(32)))");
  assert.ok(!aclAllows(boot, 'subscribe', enrollTopics.request), "!aclAllows(boot, 'subscribe', enrollTopics.request)");
  assert.ok(!aclAllows(boot, 'subscribe', 'tsunagu/#'), "!aclAllows(boot, 'subscribe', 'tsunagu/#')");
  const fleet = [fleetRole()];
  assert.ok(aclAllows(fleet, 'subscribe', enrollTopics.requestShared), "aclAllows(fleet, 'subscribe', enrollTopics.requestShared)");
  assert.ok(aclAllows(fleet, 'subscribe', 'tsunagu/devices/+/status'), "aclAllows(fleet, 'subscribe', 'tsunagu/devices/+/status')");
  assert.ok(aclAllows(fleet, 'publishClientSend', '$CONTROL/dynamic-security/v1'), "aclAllows(fleet, 'publishClientSend', '$CONTROL/dynamic-security/v1')");
  assert.ok(!aclAllows(fleet, 'subscribe', '#'), "!aclAllows(fleet, 'subscribe', '#')");
  assert.ok(!aclAllows(fleet, 'publishClientReceive', '$SYS/broker/heartbeat'), "!aclAllows(fleet, 'publishClientReceive', '$SYS/broker/heartbeat')");
});

test('no role is deny, and a deny entry beats an allow of the same priority', () => {
  assert.ok(!aclAllows([], 'publishClientSend', 'tsunagu/x'), "!aclAllows([], 'publishClientSend', 'tsunagu/x')");
  const roles = [
    { rolename: 'r', acls: [{ acltype: 'publishClientSend' as const, topic: 'a/#', allow: true }, { acltype: 'publishClientSend' as const, topic: 'a/b', allow: false }] },
  ];
  assert.ok(aclAllows(roles, 'publishClientSend', 'a/c'), "aclAllows(roles, 'publishClientSend', 'a/c')");
  assert.ok(!aclAllows(roles, 'publishClientSend', 'a/b'), "!aclAllows(roles, 'publishClientSend', 'a/b')");
});

test('names with wildcards or separators are not plain; $share groups are dropped', () => {
  for (const bad of ['', '+', '#', 'a/b', 'd-1/#', 'x\u0000']) assert.ok(!isPlainName(bad), bad);
  assert.ok(isPlainName('d-0123abcd'), "isPlainName('d-0123abcd')");
  assert.equal(unshareFilter('$share/tsunagu-enroll/tsunagu/enroll/request'), 'tsunagu/enroll/request');
  assert.equal(unshareFilter('tsunagu/devices/+/status'), 'tsunagu/devices/+/status');
});
