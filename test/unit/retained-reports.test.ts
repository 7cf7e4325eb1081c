import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_PACKET_BYTES, MIN_PACKET_LIMIT_BYTES } from '../../protocol/packet-size.js';
import { brokerPacketLimit, packetLimitAdvice } from '../../provisioning/broker-setup.js';
import { judgeRetainedReports } from '../../provisioning/retained-reports.js';

const inventory = {
  v: 1, at: 1, hardware: {}, arch: 'arm64', os: { platform: 'linux', distro: 'Debian', release: '12', kernel: '6.1' },
  cpu: { model: 'A53', cores: 4, physicalCores: 4 }, memory: { totalBytes: 1 }, disks: [], filesystems: [], network: [], accelerators: [], devices: [], labels: { arch: 'arm64' },
};

test('status shows what it read and names every report it cannot show, with the reason', () => {
  const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
  const read = judgeRetainedReports({ status: json({ v: 1, state: 'online', at: 1 }), inventory: json(inventory) }, MAX_PACKET_BYTES);
  assert.equal((read.reports.status as { state: string }).state, 'online');
  assert.equal((read.reports.inventory as { arch: string }).arch, 'arm64');
  assert.deepEqual(Object.keys(read.unavailable), ['metrics'], 'a missing metrics report is named; a missing state (nothing deployed) is not');
  assert.match(read.unavailable.metrics!, /^none received: .*larger than the 1048576-byte packet limit of this tool/);

  const bad = judgeRetainedReports({
    inventory: Buffer.alloc(300 * 1024, 0x20),
    metrics: Buffer.from('{"v":1'),
    state: json({ v: 1 }),
  }, undefined);
  assert.deepEqual(bad.reports, {});
  assert.match(bad.unavailable.inventory!, /^unreadable \(307200 bytes\): TOO_LARGE: /);
  assert.match(bad.unavailable.metrics!, /^unreadable \(6 bytes\): MALFORMED: /);
  assert.match(bad.unavailable.state!, /^unreadable \(\d+ bytes\): SCHEMA: state: /);

  // Under MQTT 3.1.1 the tool announced no limit: the reason does not speak of one.
  const none = judgeRetainedReports({ inventory: Buffer.alloc(0) }, undefined);
  assert.equal(none.unavailable.inventory, 'none received: the device has not sent one since the broker last started');
});

test('init judges the packet limit the broker announces', () => {
  assert.deepEqual(brokerPacketLimit(4, { cmd: 'connack', sessionPresent: false, returnCode: 0 }), { kind: 'unknown-mqtt-3' });
  assert.deepEqual(brokerPacketLimit(5, { cmd: 'connack', sessionPresent: false, reasonCode: 0 }), { kind: 'none' });
  assert.deepEqual(brokerPacketLimit(5, { cmd: 'connack', sessionPresent: false, reasonCode: 0, properties: { maximumPacketSize: 1048576 } }), { kind: 'announced', bytes: 1048576 });

  assert.deepEqual(packetLimitAdvice({ kind: 'announced', bytes: MAX_PACKET_BYTES }, MIN_PACKET_LIMIT_BYTES).warning, false);
  assert.deepEqual(packetLimitAdvice({ kind: 'announced', bytes: MIN_PACKET_LIMIT_BYTES }, MIN_PACKET_LIMIT_BYTES).warning, false);
  for (const limit of [{ kind: 'none' as const }, { kind: 'announced' as const, bytes: MAX_PACKET_BYTES + 1 }, { kind: 'announced' as const, bytes: MIN_PACKET_LIMIT_BYTES - 1 }]) {
    const advice = packetLimitAdvice(limit, MIN_PACKET_LIMIT_BYTES);
    assert.equal(advice.warning, true, JSON.stringify(limit));
    assert.match(advice.text, /set "max_packet_size 1048576"/);
  }
  const v3 = packetLimitAdvice({ kind: 'unknown-mqtt-3' }, MIN_PACKET_LIMIT_BYTES);
  assert.equal(v3.warning, false);
  assert.match(v3.text, /MQTT 3\.1\.1 cannot tell .*max_packet_size 1048576/);
});
