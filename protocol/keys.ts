import { createHash, randomBytes } from 'node:crypto';
import nacl from 'tweetnacl';
import * as z from 'zod/mini';
import { fromBase64, toBase64, toHex } from './bytes.js';

/** A party's two key pairs: Ed25519 to sign, X25519 to receive sealed boxes. */
export interface KeyPairs {
  signPublicKey: Uint8Array;
  /** 64 bytes, tweetnacl form (seed ‖ public key). */
  signSecretKey: Uint8Array;
  boxPublicKey: Uint8Array;
  boxSecretKey: Uint8Array;
}

export function generateKeyPairs(): KeyPairs {
  const sign = nacl.sign.keyPair.fromSeed(new Uint8Array(randomBytes(32)));
  const box = nacl.box.keyPair.fromSecretKey(new Uint8Array(randomBytes(32)));
  return { signPublicKey: sign.publicKey, signSecretKey: sign.secretKey, boxPublicKey: box.publicKey, boxSecretKey: box.secretKey };
}

/**
 * A key id names a signing key in messages: the first 8 bytes of
 * SHA-256(public key), hex. It only selects a key; the signature proves.
 */
export function keyId(signPublicKey: Uint8Array): string {
  return toHex(createHash('sha256').update(signPublicKey).digest().subarray(0, 8));
}

/** On-disk form of a key file (base64 fields). Secret halves are present only for the owner. */
export const KeyFileSchema = z.object({
  v: z.literal(1),
  signPublicKey: z.string(),
  signSecretKey: z.string(),
  boxPublicKey: z.string(),
  boxSecretKey: z.string(),
});
export type KeyFile = z.infer<typeof KeyFileSchema>;

export function keyPairsToFile(keys: KeyPairs): KeyFile {
  return {
    v: 1,
    signPublicKey: toBase64(keys.signPublicKey),
    signSecretKey: toBase64(keys.signSecretKey),
    boxPublicKey: toBase64(keys.boxPublicKey),
    boxSecretKey: toBase64(keys.boxSecretKey),
  };
}

export function keyPairsFromFile(file: KeyFile): KeyPairs {
  const keys = {
    signPublicKey: fromBase64(file.signPublicKey, 'signPublicKey', 32),
    signSecretKey: fromBase64(file.signSecretKey, 'signSecretKey', 64),
    boxPublicKey: fromBase64(file.boxPublicKey, 'boxPublicKey', 32),
    boxSecretKey: fromBase64(file.boxSecretKey, 'boxSecretKey', 32),
  };
  return keys;
}
