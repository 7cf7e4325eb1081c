/**
 * Finds the MQTT fixed headers in a client's byte stream and judges the size
 * each one declares, without keeping any of the bytes: a packet's body is
 * passed over by counting. A fixed header is one byte of type and flags and a
 * Remaining Length of one to four bytes, seven bits each, least significant
 * group first, the high bit meaning "another byte follows" (MQTT 3.1.1 §2.2.3,
 * MQTT 5 §1.5.5). The size judged is the whole packet's, header included: what
 * Mosquitto's `max_packet_size` and MQTT 5's Maximum Packet Size count.
 */
export interface HeaderScanState {
  /** Body bytes of the current packet still to pass; 0 when a header comes next. */
  readonly bodyLeft: number;
  /** Bytes of the current header read so far (0 = its type byte is next). */
  readonly headerBytes: number;
  /** The Remaining Length decoded so far. */
  readonly remaining: number;
  /** The current packet's type (the type byte's high nibble: 3 is PUBLISH). */
  readonly packetType: number;
}

export type HeaderScanVerdict =
  | { kind: 'ok' }
  /** `offset`: where in the chunk the refused packet starts (0 when it started in an earlier chunk). */
  | { kind: 'too-large'; packetBytes: number; packetType: number; offset: number }
  | { kind: 'malformed'; offset: number };

export const START_OF_STREAM: HeaderScanState = { bodyLeft: 0, headerBytes: 0, remaining: 0, packetType: 0 };

/** Remaining Length takes at most four bytes; a fifth continuation makes the stream malformed. */
const MAX_LENGTH_BYTES = 4;

/**
 * Scan one chunk. Returns the state to pass with the next chunk, and a verdict
 * that is not `ok` as soon as a header declares a packet over `maxPacketBytes`
 * (the rest of the stream is then not worth reading: the caller closes it).
 */
export function scanHeaders(state: HeaderScanState, chunk: Uint8Array, maxPacketBytes: number): { state: HeaderScanState; verdict: HeaderScanVerdict } {
  let { bodyLeft, headerBytes, remaining, packetType } = state;
  let packetStart = 0;
  let i = 0;
  while (i < chunk.length) {
    if (bodyLeft > 0) {
      const passed = Math.min(bodyLeft, chunk.length - i);
      bodyLeft -= passed;
      i += passed;
      continue;
    }
    const byte = chunk[i]!;
    if (headerBytes === 0) {
      packetStart = i;
      packetType = byte >> 4;
      headerBytes = 1;
      remaining = 0;
      i++;
      continue;
    }
    const lengthIndex = headerBytes - 1;
    remaining += (byte & 0x7f) * 128 ** lengthIndex;
    headerBytes++;
    i++;
    if ((byte & 0x80) !== 0) {
      if (lengthIndex + 1 === MAX_LENGTH_BYTES) return { state: { bodyLeft, headerBytes, remaining, packetType }, verdict: { kind: 'malformed', offset: packetStart } };
      continue;
    }
    const packetBytes = headerBytes + remaining;
    if (packetBytes > maxPacketBytes) {
      return { state: { bodyLeft, headerBytes, remaining, packetType }, verdict: { kind: 'too-large', packetBytes, packetType, offset: packetStart } };
    }
    bodyLeft = remaining;
    headerBytes = 0;
    remaining = 0;
    packetType = 0;
  }
  return { state: { bodyLeft, headerBytes, remaining, packetType }, verdict: { kind: 'ok' } };
}
