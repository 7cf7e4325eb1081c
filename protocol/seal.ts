import { randomBytes } from 'node:crypto';
import nacl from 'tweetnacl';
import { TsunaguError } from './errors.js';

/**
 * Anonymous sealed box: an ephemeral X25519 key pair per message, then
 * NaCl crypto_box (X25519 + XSalsa20-Poly1305). Layout, all raw bytes:
 *
 *   ephemeral public key (32) ‖ nonce (24) ‖ crypto_box ciphertext (16-byte tag + message)
 *
 * It equals libsodium's crypto_box_easy(message, nonce, recipientPk, ephemeralSk)
 * prefixed by the ephemeral public key and nonce, so any NaCl binding can
 * interoperate (libsodium's own crypto_box_seal derives the nonce with BLAKE2b,
 * which tweetnacl lacks; an explicit random nonce is as safe).
 */
export const SEAL_OVERHEAD = 32 + 24 + 16;

export function seal(message: Uint8Array, recipientBoxPublicKey: Uint8Array): Uint8Array {
  const ephemeralSecretKey = new Uint8Array(randomBytes(32));
  try {
    return sealWith(message, recipientBoxPublicKey, ephemeralSecretKey, new Uint8Array(randomBytes(24)));
  } finally {
    ephemeralSecretKey.fill(0);
  }
}

/**
 * The sealing itself, with the ephemeral secret key and the nonce given.
 * Only `seal` (fresh random values each time) and the test vectors call it:
 * reusing an ephemeral key with a nonce for two messages breaks the box.
 */
export function sealWith(
  message: Uint8Array, recipientBoxPublicKey: Uint8Array, ephemeralSecretKey: Uint8Array, nonce: Uint8Array,
): Uint8Array {
  const ephemeralPublicKey = nacl.box.keyPair.fromSecretKey(ephemeralSecretKey).publicKey;
  const boxed = nacl.box(message, nonce, recipientBoxPublicKey, ephemeralSecretKey);
  const out = new Uint8Array(32 + 24 + boxed.length);
  out.set(ephemeralPublicKey, 0);
  out.set(nonce, 32);
  out.set(boxed, 56);
  return out;
}

export function openSealed(sealed: Uint8Array, recipientBoxSecretKey: Uint8Array): Uint8Array {
  if (sealed.length < SEAL_OVERHEAD) throw new TsunaguError('SEAL_OPEN_FAILED', 'sealed box too short');
  const opened = nacl.box.open(sealed.subarray(56), sealed.subarray(32, 56), sealed.subarray(0, 32), recipientBoxSecretKey);
  if (opened === null) throw new TsunaguError('SEAL_OPEN_FAILED');
  return opened;
}
