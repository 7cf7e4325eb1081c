import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FRAME_HEADER_BYTES, encodeAck, encodeMessage, scanFrames } from '../../agent/link/frames.js';

const LIMIT = 1 << 20;
const a = encodeMessage(1, 'event', 1, false, 'devices/d1/events', Buffer.from('hello'));
const b = encodeAck(1);
const c = encodeMessage(2, 'state', 2, true, 'devices/d1/state', Buffer.alloc(0));

test('frames round-trip', () => {
  const scan = scanFrames(Buffer.concat([a, b, c]), LIMIT);
  assert.equal(scan.tail, 'clean');
  assert.equal(scan.validEnd, a.length + b.length + c.length);
  const [m1, ack, m2] = scan.frames;
  assert.ok(m1?.type === 1 && ack?.type === 2 && m2?.type === 1, 'm1?.type === 1 && ack?.type === 2 && m2?.type === 1');
  assert.deepEqual({ ...m1.message }, { seq: 1, cls: 'event', qos: 1, retain: false, topic: 'devices/d1/events', payloadStart: m1.message.payloadStart, payloadLength: 5 });
  assert.equal(a.subarray(m1.message.payloadStart).toString(), 'hello');
  assert.equal(ack.seq, 1);
  assert.deepEqual([m2.message.cls, m2.message.qos, m2.message.retain, m2.message.payloadLength], ['state', 2, true, 0]);
});

test('a frame cut anywhere at the end is torn, and the frames before it are kept', () => {
  for (let cut = 1; cut < c.length; cut++) {
    const scan = scanFrames(Buffer.concat([a, b, c.subarray(0, cut)]), LIMIT);
    assert.equal(scan.tail, 'torn', `cut at ${cut}`);
    assert.equal(scan.validEnd, a.length + b.length);
    assert.equal(scan.frames.length, 2);
  }
});

test('damage is corrupt, not torn: flipped bits anywhere, a damaged length, NUL bytes, a zero header', () => {
  const whole = Buffer.concat([a, b, c]);
  for (let i = 0; i < a.length; i++) {
    const damaged = Buffer.from(whole);
    damaged.writeUInt8(damaged.readUInt8(i) ^ 0x10, i);
    const scan = scanFrames(damaged, LIMIT);
    assert.equal(scan.tail, 'corrupt', `flip at ${i}`);
    assert.equal(scan.validEnd, 0);
  }
  // A length damaged to run past the end of the file must not pass for a torn append.
  const longer = Buffer.from(whole);
  longer.writeUInt32LE(a.readUInt32LE(2) + 1000, 2);
  assert.equal(scanFrames(longer, LIMIT).tail, 'corrupt');
  assert.deepEqual(scanFrames(Buffer.alloc(64), LIMIT), { frames: [], validEnd: 0, tail: 'corrupt' });
  assert.equal(scanFrames(Buffer.concat([a, Buffer.alloc(FRAME_HEADER_BYTES + 30)]), LIMIT).validEnd, a.length);
  assert.equal(scanFrames(a, 3).tail, 'corrupt', 'a body above the limit is refused before it is read');
});
