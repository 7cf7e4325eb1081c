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
  const ephemeral = nacl.box.keyPair();
  const nonce = new Uint8Array(randomBytes(24));
  const boxed = nacl.box(message, nonce, recipientBoxPublicKey, ephemeral.secretKey);
  const out = new Uint8Array(32 + 24 + boxed.length);
  out.set(ephemeral.publicKey, 0);
  out.set(nonce, 32);
  out.set(boxed, 56);
  ephemeral.secretKey.fill(0);
  return out;
}

export function openSealed(sealed: Uint8Array, recipientBoxSecretKey: Uint8Array): Uint8Array {
  if (sealed.length < SEAL_OVERHEAD) throw new TsunaguError('SEAL_OPEN_FAILED', 'sealed box too short');
  const opened = nacl.box.open(sealed.subarray(56), sealed.subarray(32, 56), sealed.subarray(0, 32), recipientBoxSecretKey);
  if (opened === null) throw new TsunaguError('SEAL_OPEN_FAILED');
  return opened;
}
