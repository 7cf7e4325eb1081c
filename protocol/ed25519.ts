import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';

/**
 * Ed25519 behind one small interface, with two implementations that must
 * take identical decisions: tweetnacl (the reference, pure JS, ~12 ms a
 * verification) and Node's built-in OpenSSL binding (~0.1 ms). Both are
 * wrapped so that a signature whose scalar S is not below the group order L
 * is refused before either library sees it: tweetnacl accepts S + L.
 */
export interface Ed25519 {
  readonly name: 'native' | 'tweetnacl';
  /** secretKey is the 64-byte tweetnacl form: seed ‖ public key. */
  sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array;
  verify(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean;
}

/** The group order L, little-endian, as the signature's S half is encoded. */
const L = Uint8Array.from([
  0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
]);

/** True when the 64-byte signature's S (bytes 32..63, little-endian) is < L. */
export function isCanonicalSignature(signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  for (let i = 31; i >= 0; i--) {
    const s = signature[32 + i]!;
    const l = L[i]!;
    if (s < l) return true;
    if (s > l) return false;
  }
  return false; // S == L
}

function wellFormed(signature: Uint8Array, publicKey: Uint8Array): boolean {
  return publicKey.length === 32 && isCanonicalSignature(signature);
}

export const tweetnaclEd25519: Ed25519 = {
  name: 'tweetnacl',
  sign: (message, secretKey) => nacl.sign.detached(message, secretKey),
  verify: (message, signature, publicKey) =>
    wellFormed(signature, publicKey) && nacl.sign.detached.verify(message, signature, publicKey),
};

// DER prefixes that turn raw RFC 8032 keys into the PKCS#8 / SPKI forms
// that node:crypto imports (RFC 8410).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * Importing a key costs more than verifying with it, and a device verifies
 * against one or two fleet keys for its whole life: keep the imported
 * objects, bounded so that a stream of unknown keys cannot grow the cache.
 */
class KeyCache {
  private readonly entries = new Map<string, KeyObject>();
  constructor(private readonly limit: number, private readonly load: (raw: Uint8Array) => KeyObject) {}

  get(raw: Uint8Array): KeyObject {
    const id = Buffer.from(raw).toString('base64');
    let key = this.entries.get(id);
    if (key === undefined) {
      key = this.load(raw);
      if (this.entries.size >= this.limit) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(id, key);
    }
    return key;
  }
}

function makeNative(): Ed25519 {
  const publicKeys = new KeyCache(64, (raw) =>
    createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' }),
  );
  const privateKeys = new KeyCache(8, (raw) =>
    createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw.subarray(0, 32)]), format: 'der', type: 'pkcs8' }),
  );
  return {
    name: 'native',
    sign: (message, secretKey) => new Uint8Array(nodeSign(null, message, privateKeys.get(secretKey))),
    verify: (message, signature, publicKey) => {
      if (!wellFormed(signature, publicKey)) return false;
      try {
        return nodeVerify(null, message, publicKeys.get(publicKey), signature);
      } catch {
        return false; // a public key OpenSSL cannot decode never verifies
      }
    },
  };
}

let chosen: Ed25519 | undefined;

/**
 * RFC 8032 §7.1, test 1 (the empty message). A fixed vector rather than a
 * key pair made with tweetnacl: deriving one in pure JS costs tens of
 * milliseconds at every start on a small board (more without a JIT).
 */
const PROBE = {
  publicKey: Buffer.from('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', 'hex'),
  signature: Buffer.from('e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b', 'hex'),
};

/** The fastest implementation this runtime offers; tweetnacl where Node lacks Ed25519. */
export function defaultEd25519(): Ed25519 {
  if (chosen === undefined) {
    try {
      const native = makeNative();
      const tampered = Buffer.from(PROBE.signature);
      tampered[0]! ^= 1;
      const empty = new Uint8Array(0);
      chosen = native.verify(empty, PROBE.signature, PROBE.publicKey) && !native.verify(empty, tampered, PROBE.publicKey) ? native : tweetnaclEd25519;
    } catch {
      chosen = tweetnaclEd25519;
    }
  }
  return chosen;
}

export function nativeEd25519(): Ed25519 {
  return makeNative();
}
