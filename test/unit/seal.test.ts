import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import nacl from 'tweetnacl';
import { isTsunaguError } from '../../protocol/errors.js';
import { openSealed, seal, SEAL_OVERHEAD, sealWith } from '../../protocol/seal.js';

const recipient = nacl.box.keyPair.fromSecretKey(new Uint8Array(32).fill(0x52));
const other = nacl.box.keyPair.fromSecretKey(new Uint8Array(32).fill(0x53));
const message = new Uint8Array(Buffer.from('{"serial":"0001"}'));

const refusedToOpen = (e: unknown): boolean => isTsunaguError(e, 'SEAL_OPEN_FAILED');

test('a sealed message opens with the recipient key', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (m) => {
      assert.deepEqual(openSealed(seal(m, recipient.publicKey), recipient.secretKey), m);
    }),
    { numRuns: 100 },
  );
});

test('the layout is ephemeral public key, nonce, crypto_box output: 72 bytes of overhead', () => {
  const ephemeral = new Uint8Array(32).fill(0x45);
  const nonce = new Uint8Array(24).fill(0x4e);
  const sealed = sealWith(message, recipient.publicKey, ephemeral, nonce);
  assert.equal(SEAL_OVERHEAD, 72);
  assert.equal(sealed.length, message.length + SEAL_OVERHEAD);
  assert.deepEqual(sealed.subarray(0, 32), nacl.box.keyPair.fromSecretKey(ephemeral).publicKey);
  assert.deepEqual(sealed.subarray(32, 56), nonce);
  // What libsodium's crypto_box_easy(message, nonce, recipientPk, ephemeralSk) returns.
  assert.deepEqual(sealed.subarray(56), nacl.box(message, nonce, recipient.publicKey, ephemeral));
  assert.deepEqual(openSealed(sealed, recipient.secretKey), message);
});

test('sealWith is deterministic; seal is not', () => {
  const ephemeral = new Uint8Array(32).fill(1);
  const nonce = new Uint8Array(24).fill(2);
  assert.deepEqual(sealWith(message, recipient.publicKey, ephemeral, nonce), sealWith(message, recipient.publicKey, ephemeral, nonce));
  const a = seal(message, recipient.publicKey);
  const b = seal(message, recipient.publicKey);
  assert.notDeepEqual(a.subarray(0, 32), b.subarray(0, 32), 'a fresh ephemeral key per message');
  assert.notDeepEqual(a.subarray(32, 56), b.subarray(32, 56), 'a fresh nonce per message');
});

test('an empty message seals to exactly the overhead and opens', () => {
  const sealed = seal(new Uint8Array(0), recipient.publicKey);
  assert.equal(sealed.length, SEAL_OVERHEAD);
  assert.deepEqual(openSealed(sealed, recipient.secretKey), new Uint8Array(0));
});

test('SEAL_OPEN_FAILED: another recipient key', () => {
  assert.throws(() => openSealed(seal(message, recipient.publicKey), other.secretKey), refusedToOpen);
});

test('SEAL_OPEN_FAILED: any flipped bit except the unused top bit of the ephemeral key', () => {
  const sealed = seal(message, recipient.publicKey);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: sealed.length * 8 - 1 }).filter((bit) => bit !== 255), (bit) => {
      const tampered = Uint8Array.from(sealed);
      tampered[bit >> 3]! ^= 1 << (bit & 7);
      assert.throws(() => openSealed(tampered, recipient.secretKey), refusedToOpen);
    }),
    { numRuns: 300 },
  );
});

test('X25519 ignores the top bit of the ephemeral key: flipping it opens to the same message', () => {
  // RFC 7748 §5 masks that bit, so two sealed byte strings can carry one
  // message: never identify a sealed box by its bytes.
  const sealed = seal(message, recipient.publicKey);
  const flipped = Uint8Array.from(sealed);
  flipped[31]! ^= 0x80;
  assert.deepEqual(openSealed(flipped, recipient.secretKey), message);
});

test('SEAL_OPEN_FAILED: shorter than the overhead, or cut short', () => {
  const sealed = seal(message, recipient.publicKey);
  assert.throws(() => openSealed(new Uint8Array(SEAL_OVERHEAD - 1), recipient.secretKey), refusedToOpen);
  assert.throws(() => openSealed(new Uint8Array(0), recipient.secretKey), refusedToOpen);
  assert.throws(() => openSealed(sealed.subarray(0, sealed.length - 1), recipient.secretKey), refusedToOpen);
});
