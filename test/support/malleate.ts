/** The group order L, little-endian, as in an Ed25519 signature's S half. */
const L = Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex');

/**
 * The same signature with S replaced by S + L: still a valid equation, so
 * tweetnacl alone accepts it, but not canonical (RFC 8032 requires S < L).
 */
export function malleate(signature: Uint8Array): Buffer {
  const out = Buffer.from(signature);
  let carry = 0;
  for (let i = 0; i < 32; i++) {
    const v = out[32 + i]! + L[i]! + carry;
    out[32 + i] = v & 0xff;
    carry = v >> 8;
  }
  return out;
}
