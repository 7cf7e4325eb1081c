import { TsunaguError } from './errors.js';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Standard base64 (RFC 4648 §4, with padding), the only encoding of bytes on the wire. */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * Strict decoding: Node's decoder silently skips invalid characters, which
 * would let two different strings name the same bytes.
 */
export function fromBase64(text: string, what: string, expectedLength?: number): Uint8Array {
  if (text.length % 4 !== 0 || !BASE64.test(text)) {
    throw new TsunaguError('MALFORMED', `${what} is not canonical base64`);
  }
  const bytes = new Uint8Array(Buffer.from(text, 'base64'));
  if (toBase64(bytes) !== text) throw new TsunaguError('MALFORMED', `${what} is not canonical base64`);
  if (expectedLength !== undefined && bytes.length !== expectedLength) {
    throw new TsunaguError('MALFORMED', `${what} must be ${expectedLength} bytes, got ${bytes.length}`);
  }
  return bytes;
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function utf8(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'utf8'));
}

export function fromUtf8(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}
