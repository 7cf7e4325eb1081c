/**
 * Docker's stream framing for non-TTY containers: an 8-byte header (stream
 * type, three zero bytes, big-endian payload length) before each chunk. A
 * buffer that does not start with a valid header is returned as it is.
 */
export function demultiplex(raw: Buffer): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= raw.length) {
    const type = raw[offset];
    if ((type !== 0 && type !== 1 && type !== 2) || raw[offset + 1] !== 0 || raw[offset + 2] !== 0 || raw[offset + 3] !== 0) {
      return offset === 0 ? raw : Buffer.concat(parts);
    }
    const length = raw.readUInt32BE(offset + 4);
    parts.push(raw.subarray(offset + 8, Math.min(raw.length, offset + 8 + length)));
    offset += 8 + length;
  }
  return offset === 0 && raw.length > 0 ? raw : Buffer.concat(parts);
}
