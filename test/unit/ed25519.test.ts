import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import nacl from 'tweetnacl';
import { isCanonicalSignature, nativeEd25519, tweetnaclEd25519, type Ed25519 } from '../../protocol/ed25519.js';

/**
 * The two Ed25519 implementations must take the same accept/reject decision
 * on every input: a fleet verifying with node:crypto and a device falling
 * back to tweetnacl must never disagree about a message.
 */
const native = nativeEd25519();
const impls: Ed25519[] = [native, tweetnaclEd25519];

const hex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** RFC 8032 §7.1, Ed25519 test vectors (secret key = 32-byte seed). */
const RFC8032 = [
  {
    name: 'TEST 1',
    secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    public: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'TEST 2',
    secret: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    public: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'TEST 3',
    secret: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    public: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
  {
    name: 'TEST 1024',
    secret: 'f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5',
    public: '278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e',
    message: [
      '08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1',
      'e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d',
      '658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a',
      '7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e',
      '06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc10',
      '3b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1',
      '85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d',
      '502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270',
      '88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089b',
      'eccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba',
      'b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969b',
      'e3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7',
      '51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988d',
      'cda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df',
      'f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7',
      '984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4',
      '88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac09',
      '43bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f',
      'b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f161',
      '0e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d',
      'b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8ca',
      'c60c905c15fc910840b94c00a0b9d0',
    ].join(''),
    signature: '0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03',
  },
  {
    name: 'TEST SHA(abc)',
    secret: '833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42',
    public: 'ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf',
    // SHA-512("abc")
    message: 'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    signature: 'dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704',
  },
] as const;

/** The group order L = 2^252 + 27742317777372353535851937790883648493. */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

function scalarOf(signature: Uint8Array): bigint {
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(signature[i]!);
  return s;
}

/** A copy of `signature` whose S half is replaced by `s` (little-endian, 32 bytes). */
function withScalar(signature: Uint8Array, s: bigint): Uint8Array {
  assert.ok(s >= 0n && s < 2n ** 256n, 's >= 0n && s < 2n ** 256n');
  const out = Uint8Array.from(signature);
  let v = s;
  for (let i = 32; i < 64; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[bit >> 3]! ^= 1 << (bit & 7);
  return out;
}

function decisions(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean[] {
  return impls.map((ed) => ed.verify(message, signature, publicKey));
}

for (const v of RFC8032) {
  test(`RFC 8032 ${v.name}: both implementations derive the key, reproduce the signature and accept it`, () => {
    const pair = nacl.sign.keyPair.fromSeed(hex(v.secret));
    assert.equal(toHex(pair.publicKey), v.public);
    const message = hex(v.message);
    for (const ed of impls) {
      assert.equal(toHex(ed.sign(message, pair.secretKey)), v.signature, ed.name);
    }
    assert.deepEqual(decisions(message, hex(v.signature), hex(v.public)), [true, true]);
    assert.deepEqual(decisions(message, flipBit(hex(v.signature), 0), hex(v.public)), [false, false]);
  });

  test(`RFC 8032 ${v.name}: the malleated signature S + L is refused by both`, () => {
    const signature = hex(v.signature);
    const malleated = withScalar(signature, scalarOf(signature) + L);
    assert.equal(isCanonicalSignature(malleated), false);
    assert.deepEqual(decisions(hex(v.message), malleated, hex(v.public)), [false, false]);
    // The guard is what refuses it: tweetnacl on its own accepts S + L.
    assert.equal(nacl.sign.detached.verify(hex(v.message), malleated, hex(v.public)), true);
  });
}

test('the TEST 1024 message is the 1023 bytes the RFC names', () => {
  assert.equal(hex(RFC8032[3].message).length, 1023);
});

test('isCanonicalSignature: S = L-1 accepted, S = L and S = L+1 refused', () => {
  const base = hex(RFC8032[0].signature);
  assert.equal(isCanonicalSignature(withScalar(base, 0n)), true);
  assert.equal(isCanonicalSignature(withScalar(base, L - 1n)), true);
  assert.equal(isCanonicalSignature(withScalar(base, L)), false);
  assert.equal(isCanonicalSignature(withScalar(base, L + 1n)), false);
  assert.equal(isCanonicalSignature(withScalar(base, 2n ** 256n - 1n)), false);
  // Only the S half counts: R may be anything.
  assert.equal(isCanonicalSignature(withScalar(new Uint8Array(64).fill(0xff), L - 1n)), true);
});

test('isCanonicalSignature refuses signatures that are not 64 bytes', () => {
  assert.equal(isCanonicalSignature(new Uint8Array(0)), false);
  assert.equal(isCanonicalSignature(new Uint8Array(63)), false);
  assert.equal(isCanonicalSignature(new Uint8Array(65)), false);
});

test('isCanonicalSignature agrees with S < L on scalars around L and at random', () => {
  const nearL = fc.bigInt({ min: -300n, max: 300n }).map((d) => L + d);
  const anywhere = fc.bigInt({ min: 0n, max: 2n ** 256n - 1n });
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.oneof(nearL, anywhere), (r, s) => {
      const signature = withScalar(Uint8Array.from([...r, ...new Uint8Array(32)]), s);
      assert.equal(isCanonicalSignature(signature), s < L);
    }),
    { numRuns: 2000 },
  );
});

// A few fixed signers keep the property tests fast: tweetnacl needs ~15 ms a verification,
// which is also why the bit-flip properties run hundreds of cases, not thousands.
const signers = Array.from({ length: 4 }, (_, i) => nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(0x31 + i)));
const signerIndex = fc.integer({ min: 0, max: signers.length - 1 });
const message = fc.uint8Array({ maxLength: 200 });

test('a signature made by either implementation is the same bytes and is accepted by both', () => {
  fc.assert(
    fc.property(signerIndex, message, (i, m) => {
      const pair = signers[i]!;
      const byNative = native.sign(m, pair.secretKey);
      const byNacl = tweetnaclEd25519.sign(m, pair.secretKey);
      assert.deepEqual(byNative, byNacl); // Ed25519 signing is deterministic
      assert.equal(tweetnaclEd25519.verify(m, byNative, pair.publicKey), true);
      assert.equal(native.verify(m, byNacl, pair.publicKey), true);
    }),
    { numRuns: 200 },
  );
});

test('a bit flip in the message is refused by both', () => {
  fc.assert(
    fc.property(signerIndex, fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.nat(), (i, m, position) => {
      const pair = signers[i]!;
      const signature = native.sign(m, pair.secretKey);
      assert.deepEqual(decisions(flipBit(m, position % (m.length * 8)), signature, pair.publicKey), [false, false]);
    }),
    { numRuns: 300 },
  );
});

test('a bit flip in the signature is refused by both', () => {
  fc.assert(
    fc.property(signerIndex, message, fc.integer({ min: 0, max: 511 }), (i, m, bit) => {
      const pair = signers[i]!;
      const signature = native.sign(m, pair.secretKey);
      assert.deepEqual(decisions(m, flipBit(signature, bit), pair.publicKey), [false, false]);
    }),
    { numRuns: 300 },
  );
});

test('a bit flip in the public key is refused by both', () => {
  fc.assert(
    fc.property(signerIndex, message, fc.integer({ min: 0, max: 255 }), (i, m, bit) => {
      const pair = signers[i]!;
      const signature = native.sign(m, pair.secretKey);
      assert.deepEqual(decisions(m, signature, flipBit(pair.publicKey, bit)), [false, false]);
    }),
    { numRuns: 200 },
  );
});

test('arbitrary bytes as signature and key get the same decision from both', () => {
  fc.assert(
    fc.property(message, fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (m, sig, pk) => {
      const [a, b] = decisions(m, sig, pk);
      assert.equal(a, b);
    }),
    { numRuns: 300 },
  );
});

test('keys and signatures of the wrong length are refused by both, without throwing', () => {
  const pair = signers[0]!;
  const m = new Uint8Array([1, 2, 3]);
  const signature = native.sign(m, pair.secretKey);
  assert.deepEqual(decisions(m, signature.subarray(0, 63), pair.publicKey), [false, false]);
  assert.deepEqual(decisions(m, Uint8Array.from([...signature, 0]), pair.publicKey), [false, false]);
  assert.deepEqual(decisions(m, signature, pair.publicKey.subarray(0, 31)), [false, false]);
  assert.deepEqual(decisions(m, signature, new Uint8Array(33)), [false, false]);
});
