import assert from 'node:assert/strict';
import { test } from 'node:test';
import nacl from 'tweetnacl';
import { toBase64, utf8 } from '../../protocol/bytes.js';
import { nativeEd25519, tweetnaclEd25519 } from '../../protocol/ed25519.js';
import {
  decodeEnvelope, signEnvelope, verifyEnvelope, type SignedPayload,
} from '../../protocol/envelope.js';
import { isTsunaguError, type ErrorCode } from '../../protocol/errors.js';
import { DEFAULT_JSON_LIMITS } from '../../protocol/json.js';
import { keyId } from '../../protocol/keys.js';

const ed = nativeEd25519();
const signer = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(0x11));
const stranger = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(0x22));
const kid = keyId(signer.publicKey);
const trusted = (k: string): Uint8Array | undefined => (k === kid ? signer.publicKey : undefined);
const limits = DEFAULT_JSON_LIMITS;

const payload: SignedPayload = {
  typ: 'cmd',
  id: '00112233445566778899aabbccddeeff',
  to: 'd-0123456789abcdef0123',
  iat: 1_700_000_000_000,
  exp: 1_700_000_060_000,
  ctr: 7,
  tp: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  data: { name: 'reboot', args: { delay: 5 } },
};

const codeIs = (code: ErrorCode) => (e: unknown): boolean => isTsunaguError(e, code);

/** Decode and verify in one step, as a receiver does. */
function receive(bytes: Uint8Array, lookup = trusted): SignedPayload {
  return verifyEnvelope(decodeEnvelope(bytes, limits), lookup, ed, limits);
}

/** An envelope with hand-made outer fields (what a hostile or broken sender can put on the wire). */
function rawEnvelope(fields: Record<string, unknown>): Uint8Array {
  return utf8(JSON.stringify(fields));
}

function wireFields(bytes: Uint8Array): { v: number; kid: string; sig: string; body: string } {
  return JSON.parse(Buffer.from(bytes).toString('utf8')) as { v: number; kid: string; sig: string; body: string };
}

test('round trip: what is signed is what is received, with either implementation on either side', () => {
  for (const signerImpl of [nativeEd25519(), tweetnaclEd25519]) {
    for (const verifierImpl of [nativeEd25519(), tweetnaclEd25519]) {
      const bytes = signEnvelope(payload, kid, signer.secretKey, signerImpl);
      assert.deepEqual(verifyEnvelope(decodeEnvelope(bytes, limits), trusted, verifierImpl, limits), payload);
    }
  }
});

test('the wire form: exact outer fields, body = base64 of the payload JSON, signature over exactly those bytes', () => {
  const bytes = signEnvelope(payload, kid, signer.secretKey, ed);
  const wire = wireFields(bytes);
  assert.deepEqual(Object.keys(wire), ['v', 'kid', 'sig', 'body']);
  assert.equal(wire.v, 1);
  assert.equal(wire.kid, kid);
  const body = Buffer.from(wire.body, 'base64');
  assert.equal(body.toString('utf8'), JSON.stringify(payload));
  assert.equal(nacl.sign.detached.verify(new Uint8Array(body), new Uint8Array(Buffer.from(wire.sig, 'base64')), signer.publicKey), true);
  const opened = decodeEnvelope(bytes, limits);
  assert.deepEqual(opened.body, new Uint8Array(body));
  assert.equal(opened.signature.length, 64);
});

test('the body bytes are verified as sent, not re-serialised: any JSON spelling the signer chose verifies', () => {
  const spelled = utf8('{ "typ":"cmd", "id":"00112233445566778899aabbccddeeff","to":"dev-1","iat":1,"exp":2,"data":null }');
  const sig = nacl.sign.detached(spelled, signer.secretKey);
  const bytes = rawEnvelope({ v: 1, kid, sig: toBase64(sig), body: toBase64(spelled) });
  assert.equal(receive(bytes).to, 'dev-1');
});

test('UNSIGNED: an envelope object without sig', () => {
  const rest: Partial<ReturnType<typeof wireFields>> = wireFields(signEnvelope(payload, kid, signer.secretKey, ed));
  delete rest.sig;
  assert.throws(() => decodeEnvelope(rawEnvelope(rest), limits), codeIs('UNSIGNED'));
  // A bare payload sent without any envelope is unsigned too.
  assert.throws(() => decodeEnvelope(utf8(JSON.stringify(payload)), limits), codeIs('UNSIGNED'));
});

test('BAD_SIGNATURE: a changed body, or a signature by another key under the trusted kid', () => {
  const wire = wireFields(signEnvelope(payload, kid, signer.secretKey, ed));
  const changed = toBase64(utf8(JSON.stringify({ ...payload, to: 'd-someone-else' })));
  assert.throws(() => receive(rawEnvelope({ ...wire, body: changed })), codeIs('BAD_SIGNATURE'));
  const forged = signEnvelope(payload, kid, stranger.secretKey, ed);
  assert.throws(() => receive(forged), codeIs('BAD_SIGNATURE'));
});

test('NON_CANONICAL_SIGNATURE: S + L, which tweetnacl alone would accept', () => {
  const wire = wireFields(signEnvelope(payload, kid, signer.secretKey, ed));
  const sig = Buffer.from(wire.sig, 'base64');
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
  s += 2n ** 252n + 27742317777372353535851937790883648493n;
  for (let i = 32; i < 64; i++) {
    sig[i] = Number(s & 0xffn);
    s >>= 8n;
  }
  const malleated = rawEnvelope({ ...wire, sig: sig.toString('base64') });
  for (const impl of [nativeEd25519(), tweetnaclEd25519]) {
    assert.throws(() => verifyEnvelope(decodeEnvelope(malleated, limits), trusted, impl, limits), codeIs('NON_CANONICAL_SIGNATURE'));
  }
});

test('UNKNOWN_KEY: a kid the receiver does not trust', () => {
  const bytes = signEnvelope(payload, keyId(stranger.publicKey), stranger.secretKey, ed);
  assert.throws(() => receive(bytes), codeIs('UNKNOWN_KEY'));
});

test('MALFORMED: base64 that is not standard, padded and canonical', () => {
  const wire = wireFields(signEnvelope(payload, kid, signer.secretKey, ed));
  // Bytes chosen so that their base64 has '+', '/' and padding to vary.
  const body = toBase64(new Uint8Array([0xfb, 0xff, 0xbf, 0xfe]));
  assert.equal(body, '+/+//g==');
  assert.doesNotThrow(() => decodeEnvelope(rawEnvelope({ ...wire, body }), limits));
  const variants: [string, string][] = [
    ['unpadded', body.replace(/=+$/, '')],
    ['url-safe alphabet', body.replace(/\+/g, '-').replace(/\//g, '_')],
    ['embedded newline', `${body.slice(0, 8)}\n${body.slice(8)}`],
    ['embedded space', `${body.slice(0, 8)} ${body.slice(8)}`],
    ['extra padding', `${body}====`],
  ];
  for (const [what, text] of variants) {
    assert.throws(() => decodeEnvelope(rawEnvelope({ ...wire, body: text }), limits), codeIs('MALFORMED'), what);
  }
  // Non-zero unused bits: "QR==" decodes to the same byte as "QQ==" ("A").
  assert.throws(() => decodeEnvelope(rawEnvelope({ ...wire, body: 'QR==' }), limits), codeIs('MALFORMED'));
  const sigBytes = Buffer.from(wire.sig, 'base64');
  // The signature is 64 bytes: its base64 is 88 characters ending in "==", so the last data character has 4 unused bits.
  const last = wire.sig.charAt(85);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const sibling = alphabet.charAt(alphabet.indexOf(last) ^ 1);
  const sigVariant = `${wire.sig.slice(0, 85)}${sibling}==`;
  assert.deepEqual(Buffer.from(sigVariant, 'base64'), sigBytes, 'Node would decode both spellings to the same bytes');
  assert.throws(() => decodeEnvelope(rawEnvelope({ ...wire, sig: sigVariant }), limits), codeIs('MALFORMED'));
});

test('MALFORMED: a signature that is not 64 bytes, or input that is not JSON', () => {
  const wire = wireFields(signEnvelope(payload, kid, signer.secretKey, ed));
  assert.throws(() => decodeEnvelope(rawEnvelope({ ...wire, sig: toBase64(new Uint8Array(63)) }), limits), codeIs('MALFORMED'));
  assert.throws(() => decodeEnvelope(rawEnvelope({ ...wire, sig: '' }), limits), codeIs('MALFORMED'));
  assert.throws(() => decodeEnvelope(utf8('{"v":1,'), limits), codeIs('MALFORMED'));
  assert.throws(() => decodeEnvelope(new Uint8Array([0xff, 0xfe]), limits), codeIs('MALFORMED'));
});

test('TOO_LARGE: an envelope over the byte limit is refused before parsing', () => {
  const bytes = signEnvelope({ ...payload, data: 'x'.repeat(2000) }, kid, signer.secretKey, ed);
  assert.throws(() => decodeEnvelope(bytes, { maxBytes: bytes.length - 1, maxDepth: 32 }), codeIs('TOO_LARGE'));
  assert.doesNotThrow(() => decodeEnvelope(bytes, { maxBytes: bytes.length, maxDepth: 32 }));
});

test('TOO_DEEP: the envelope allows 4 levels; the payload the limit given', () => {
  const wire = wireFields(signEnvelope(payload, kid, signer.secretKey, ed));
  assert.throws(() => decodeEnvelope(utf8(`{"v":1,"x":[[[[1]]]],"sig":"${wire.sig}"}`), limits), codeIs('TOO_DEEP'));
  let deep: unknown = 1;
  for (let i = 0; i < 40; i++) deep = [deep];
  const bytes = signEnvelope({ ...payload, data: deep }, kid, signer.secretKey, ed);
  assert.throws(() => receive(bytes), codeIs('TOO_DEEP'));
});

test('SCHEMA: unknown outer or payload fields, a bad kid, another version', () => {
  const wire = wireFields(signEnvelope(payload, kid, signer.secretKey, ed));
  assert.throws(() => decodeEnvelope(rawEnvelope({ ...wire, extra: 1 }), limits), codeIs('SCHEMA'));
  assert.throws(() => decodeEnvelope(rawEnvelope({ ...wire, v: 2 }), limits), codeIs('SCHEMA'));
  assert.throws(() => decodeEnvelope(rawEnvelope({ ...wire, kid: kid.toUpperCase() }), limits), codeIs('SCHEMA'));
  assert.throws(() => decodeEnvelope(utf8('[]'), limits), codeIs('SCHEMA'));
  const withExtra = signEnvelope({ ...payload, extra: true } as SignedPayload, kid, signer.secretKey, ed);
  assert.throws(() => receive(withExtra), codeIs('SCHEMA'));
  const badId = signEnvelope({ ...payload, id: 'not-hex' }, kid, signer.secretKey, ed);
  assert.throws(() => receive(badId), codeIs('SCHEMA'));
  const badTrace = signEnvelope({ ...payload, tp: '01-00-00-00' }, kid, signer.secretKey, ed);
  assert.throws(() => receive(badTrace), codeIs('SCHEMA'));
});

test('the signature is checked before the payload is parsed', () => {
  // A body that is not even JSON, signed by a stranger under the trusted kid: BAD_SIGNATURE, not MALFORMED.
  const body = utf8('not json');
  const bytes = rawEnvelope({ v: 1, kid, sig: toBase64(nacl.sign.detached(body, stranger.secretKey)), body: toBase64(body) });
  assert.throws(() => receive(bytes), codeIs('BAD_SIGNATURE'));
  const signed = rawEnvelope({ v: 1, kid, sig: toBase64(nacl.sign.detached(body, signer.secretKey)), body: toBase64(body) });
  assert.throws(() => receive(signed), codeIs('MALFORMED'));
});
