import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import { scanHeaders, START_OF_STREAM, type HeaderScanState, type HeaderScanVerdict } from '../../../provisioning/embedded/packet-header-scan.js';

// Packets made by mqtt-packet (the library Aedes and MQTT.js parse with): the
// scanner is checked against real encodings, not against its own idea of them.
const publish = (payloadBytes: number, topic = 'tsunagu/fleet/devices/d-1/cmd'): Buffer =>
  mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.alloc(payloadBytes, 0x61), qos: 1, messageId: 7, retain: false, dup: false });
const connect = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'd-1', keepalive: 30, username: 'u', password: Buffer.from('p') });
const pingreq = mqttPacket.generate({ cmd: 'pingreq' });

/** Feed the chunks in order; the first verdict that is not ok, or ok and the final state. */
function scanAll(chunks: Uint8Array[], max: number): { verdict: HeaderScanVerdict; state: HeaderScanState; chunkIndex: number } {
  let state = START_OF_STREAM;
  for (const [chunkIndex, chunk] of chunks.entries()) {
    const r = scanHeaders(state, chunk, max);
    state = r.state;
    if (r.verdict.kind !== 'ok') return { verdict: r.verdict, state, chunkIndex };
  }
  return { verdict: { kind: 'ok' }, state, chunkIndex: chunks.length };
}

function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  return out;
}

test('a stream of packets under the limit passes whole, at every split, and ends between packets', () => {
  const stream = Buffer.concat([connect, publish(0), publish(200), pingreq, publish(20_000), publish(5)]);
  for (let cut = 0; cut <= stream.length; cut++) {
    const { verdict, state } = scanAll([stream.subarray(0, cut), stream.subarray(cut)], 64 * 1024);
    assert.deepEqual(verdict, { kind: 'ok' }, `split at ${cut}`);
    assert.deepEqual(state, START_OF_STREAM, `split at ${cut}`);
  }
  const byByte = scanAll([...stream].map((b) => Uint8Array.of(b)), 64 * 1024);
  assert.deepEqual(byByte.verdict, { kind: 'ok' });
});

test('the limit counts the whole packet: a packet of exactly the limit passes, one byte more is refused', () => {
  const atLimit = publish(1000);
  assert.deepEqual(scanAll([atLimit], atLimit.length).verdict, { kind: 'ok' });
  assert.deepEqual(scanAll([atLimit], atLimit.length - 1).verdict, { kind: 'too-large', packetBytes: atLimit.length, packetType: 3, offset: 0 });
});

test('a 100 MB PUBLISH is refused from its five header bytes, whatever the chunking, with none of its body needed', () => {
  const declared = 100 * 1024 * 1024;
  // The fixed header of a PUBLISH whose Remaining Length is 100 MB, followed by the first body bytes only.
  const header = Buffer.from(mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false }));
  const lengthBytes: number[] = [];
  for (let n = declared; ; ) {
    const digit = n % 128;
    n = Math.floor(n / 128);
    lengthBytes.push(n > 0 ? digit | 0x80 : digit);
    if (n === 0) break;
  }
  const start = Buffer.concat([Buffer.of(header[0]!), Buffer.from(lengthBytes), Buffer.alloc(64, 0x62)]);
  const expected = { kind: 'too-large', packetBytes: 1 + lengthBytes.length + declared, packetType: 3 };
  const after = Buffer.concat([connect, pingreq]);
  for (let cut = 0; cut <= start.length; cut++) {
    const { verdict, chunkIndex } = scanAll([after, start.subarray(0, cut), start.subarray(cut)], 1024 * 1024);
    // Refused in the chunk that completes the header; the packet starts at 0 there or in an earlier chunk.
    assert.deepEqual(verdict, { ...expected, offset: 0 }, `split at ${cut}`);
    assert.equal(chunkIndex, cut >= 1 + lengthBytes.length ? 1 : 2, `split at ${cut}`);
  }
  const inOne = scanHeaders(START_OF_STREAM, Buffer.concat([after, start]), 1024 * 1024).verdict;
  assert.deepEqual(inOne, { ...expected, offset: after.length });
});

test('a Remaining Length that continues past four bytes is malformed', () => {
  const bad = Buffer.concat([pingreq, Buffer.of(0x30, 0xff, 0xff, 0xff, 0xff, 0x01)]);
  assert.deepEqual(scanHeaders(START_OF_STREAM, bad, 1024 * 1024).verdict, { kind: 'malformed', offset: pingreq.length });
  // The largest length MQTT allows (four bytes, 268,435,455) is not malformed, only too large.
  const largest = Buffer.of(0x30, 0xff, 0xff, 0xff, 0x7f);
  assert.deepEqual(scanHeaders(START_OF_STREAM, largest, 1024 * 1024).verdict, { kind: 'too-large', packetBytes: 5 + 268_435_455, packetType: 3, offset: 0 });
});

test('any packet sequence at any chunking: refused exactly at the first packet over the limit', () => {
  const packetArb = fc.oneof(
    fc.integer({ min: 0, max: 3000 }).map((n) => publish(n)),
    fc.constant(connect),
    fc.constant(pingreq),
  );
  fc.assert(fc.property(fc.array(packetArb, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 6 }), fc.integer({ min: 2, max: 3100 }), (packets, cuts, max) => {
    const stream = Buffer.concat(packets);
    const firstOver = packets.findIndex((p) => p.length > max);
    const { verdict, state } = scanAll(splitAt(stream, cuts), max);
    if (firstOver === -1) {
      assert.deepEqual(verdict, { kind: 'ok' });
      assert.deepEqual(state, START_OF_STREAM);
    } else {
      assert.equal(verdict.kind, 'too-large');
      if (verdict.kind === 'too-large') assert.equal(verdict.packetBytes, packets[firstOver]!.length);
    }
  }));
});
