import nacl from 'tweetnacl';
import type { KeyPairs } from '../../protocol/keys.js';

/** Key pairs derived from one byte: the same in every run, different for every byte (a fleet, a device, an intruder). */
export function keysFrom(byte: number): KeyPairs {
  const sign = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(byte));
  const box = nacl.box.keyPair.fromSecretKey(new Uint8Array(32).fill(byte + 1));
  return { signPublicKey: sign.publicKey, signSecretKey: sign.secretKey, boxPublicKey: box.publicKey, boxSecretKey: box.secretKey };
}
