import { crc32 } from './crc32.js';

/*
 * Record framing of the outbox log. Each frame:
 *
 *   magic u8 (0xA7) | type u8 | body length u32 LE | header check u8 | crc32 u32 LE | body
 *
 * The CRC covers type, length and body. The header check (low byte of the
 * CRC of type and length) tells a torn append from a damaged length: a frame
 * whose header checks out but whose body runs past the end of the file was
 * cut short while being written (the normal result of a power cut, quietly
 * truncated), whereas a length that fails its check is damage, which makes
 * the whole file go to `.bad` rather than silently losing what follows.
 * The magic byte is non-zero so that a region of NUL bytes (what many SD
 * cards and ext4 leave after a power cut) never parses as a frame: without
 * it, an all-zero header would claim an empty body whose CRC is also zero.
 */

export const FRAME_MAGIC = 0xa7;
export const FRAME_HEADER_BYTES = 11;

export const FrameType = { message: 1, ack: 2 } as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export const MESSAGE_CLASSES = ['reply', 'event', 'state', 'metrics'] as const;
export type MessageClass = (typeof MESSAGE_CLASSES)[number];

/** Fixed part of a message body before the topic: seq u64, class u8, qos u8, flags u8, topic length u16. */
const MESSAGE_FIXED_BYTES = 13;
const ACK_BODY_BYTES = 8;

export interface MessageRecord {
  seq: number;
  cls: MessageClass;
  qos: 0 | 1 | 2;
  retain: boolean;
  topic: string;
  /** Offset of the payload from the start of the frame. */
  payloadStart: number;
  payloadLength: number;
}

export function frame(type: FrameType, body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.byteLength);
  out[0] = FRAME_MAGIC;
  out[1] = type;
  out.writeUInt32LE(body.byteLength, 2);
  const headerCrc = crc32(out.subarray(1, 6));
  out[6] = headerCrc & 0xff;
  out.set(body, FRAME_HEADER_BYTES);
  out.writeUInt32LE(crc32(body, headerCrc), 7);
  return out;
}

export function messageFrameBytes(topicBytes: number, payloadBytes: number): number {
  return FRAME_HEADER_BYTES + MESSAGE_FIXED_BYTES + topicBytes + payloadBytes;
}

export const ACK_FRAME_BYTES = FRAME_HEADER_BYTES + ACK_BODY_BYTES;

export function encodeMessage(seq: number, cls: MessageClass, qos: 0 | 1 | 2, retain: boolean, topic: string, payload: Uint8Array): Buffer {
  const t = Buffer.from(topic, 'utf8');
  const body = Buffer.allocUnsafe(MESSAGE_FIXED_BYTES + t.byteLength + payload.byteLength);
  body.writeBigUInt64LE(BigInt(seq), 0);
  body[8] = MESSAGE_CLASSES.indexOf(cls);
  body[9] = qos;
  body[10] = retain ? 1 : 0;
  body.writeUInt16LE(t.byteLength, 11);
  body.set(t, MESSAGE_FIXED_BYTES);
  body.set(payload, MESSAGE_FIXED_BYTES + t.byteLength);
  return frame(FrameType.message, body);
}

export function encodeAck(seq: number): Buffer {
  const body = Buffer.allocUnsafe(ACK_BODY_BYTES);
  body.writeBigUInt64LE(BigInt(seq), 0);
  return frame(FrameType.ack, body);
}

export type ScannedFrame =
  | { type: typeof FrameType.message; offset: number; length: number; message: MessageRecord }
  | { type: typeof FrameType.ack; offset: number; length: number; seq: number };

export interface ScanResult {
  frames: ScannedFrame[];
  /** Bytes up to the end of the last valid frame. */
  validEnd: number;
  /**
   * `clean`: every byte belongs to a valid frame. `torn`: the bytes after
   * `validEnd` are the beginning of a frame cut short by the end of the file,
   * which is what an interrupted append leaves. `corrupt`: anything else.
   */
  tail: 'clean' | 'torn' | 'corrupt';
}

/** Parse frames until the first invalid one; never throws. */
export function scanFrames(buf: Buffer, maxBodyBytes: number): ScanResult {
  const frames: ScannedFrame[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const remaining = buf.length - pos;
    if (buf[pos] !== FRAME_MAGIC) return { frames, validEnd: pos, tail: 'corrupt' };
    if (remaining < FRAME_HEADER_BYTES) return { frames, validEnd: pos, tail: 'torn' };
    const type = buf[pos + 1];
    const len = buf.readUInt32LE(pos + 2);
    const headerCrc = crc32(buf.subarray(pos + 1, pos + 6));
    if (buf[pos + 6] !== (headerCrc & 0xff) || (type !== FrameType.message && type !== FrameType.ack) || len > maxBodyBytes) {
      return { frames, validEnd: pos, tail: 'corrupt' };
    }
    if (remaining < FRAME_HEADER_BYTES + len) return { frames, validEnd: pos, tail: 'torn' };
    const body = buf.subarray(pos + FRAME_HEADER_BYTES, pos + FRAME_HEADER_BYTES + len);
    if (buf.readUInt32LE(pos + 7) !== crc32(body, headerCrc)) return { frames, validEnd: pos, tail: 'corrupt' };
    const length = FRAME_HEADER_BYTES + len;
    if (type === FrameType.ack) {
      if (len !== ACK_BODY_BYTES) return { frames, validEnd: pos, tail: 'corrupt' };
      frames.push({ type, offset: pos, length, seq: Number(body.readBigUInt64LE(0)) });
    } else {
      const message = decodeMessageBody(body);
      if (message === undefined) return { frames, validEnd: pos, tail: 'corrupt' };
      frames.push({ type, offset: pos, length, message });
    }
    pos += length;
  }
  return { frames, validEnd: pos, tail: 'clean' };
}

function decodeMessageBody(body: Buffer): MessageRecord | undefined {
  if (body.length < MESSAGE_FIXED_BYTES) return undefined;
  const cls = MESSAGE_CLASSES[body[8] as number];
  const qos = body[9];
  const flags = body[10] as number;
  const topicLength = body.readUInt16LE(11);
  if (cls === undefined || (qos !== 0 && qos !== 1 && qos !== 2) || flags > 1 || MESSAGE_FIXED_BYTES + topicLength > body.length) return undefined;
  return {
    seq: Number(body.readBigUInt64LE(0)),
    cls,
    qos,
    retain: flags === 1,
    topic: body.toString('utf8', MESSAGE_FIXED_BYTES, MESSAGE_FIXED_BYTES + topicLength),
    payloadStart: FRAME_HEADER_BYTES + MESSAGE_FIXED_BYTES + topicLength,
    payloadLength: body.length - MESSAGE_FIXED_BYTES - topicLength,
  };
}
