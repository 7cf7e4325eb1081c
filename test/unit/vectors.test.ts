import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import nacl from 'tweetnacl';
import { nativeEd25519, tweetnaclEd25519 } from '../../protocol/ed25519.js';
import { openEnrollRequest, openEnrollResponse, type DeviceClaim, type EnrollGrant } from '../../protocol/enrollment.js';
import { decodeEnvelope, verifyEnvelope, type SignedPayload } from '../../protocol/envelope.js';
import { DEFAULT_JSON_LIMITS } from '../../protocol/json.js';
import { deriveDeviceId } from '../../provisioning/fleet-database.js';
import { deriveVectors, seedFrom, vectorFileText } from '../../scripts/vectors.js';

/**
 * The files in protocol/vectors/ are what docs/protocol.md publishes. They
 * must be exactly what the code derives today (regenerate with
 * `node --import tsx scripts/make-vectors.ts`), and they must check out
 * with plain NaCl primitives, as a third party would check them.
 */
const dir = join(import.meta.dirname, '..', '..', 'protocol', 'vectors');
const read = (name: string): string => readFileSync(join(dir, name), 'utf8');
const hex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));

interface Party {
  signSeedLabel: string; signSeedHex: string; signPublicKeyHex: string; signPublicKeyBase64: string; keyId: string;
  boxSecretKeyLabel: string; boxSecretKeyHex: string; boxPublicKeyHex: string; boxPublicKeyBase64: string;
}
interface EnvelopeParts { kid: string; payloadText: string; payloadHex: string; signatureHex: string; wireText: string; wireHex: string }
interface SealParams { ephemeralSecretKeyLabel: string; ephemeralSecretKeyHex: string; ephemeralPublicKeyHex: string; nonceLabel: string; nonceHex: string }

const keys = JSON.parse(read('keys.json')) as { fleet: Party; device: Party };
const envelope = JSON.parse(read('envelope.json')) as EnvelopeParts & { payload: SignedPayload };
const sealedBox = JSON.parse(read('sealed-box.json')) as SealParams & { messageHex: string; cryptoBoxHex: string; sealedHex: string; sealedBase64: string };
const enrollment = JSON.parse(read('enrollment.json')) as {
  request: EnvelopeParts & { claim: DeviceClaim; claimText: string; claimSeal: SealParams; sealedClaimHex: string };
  grantResponse: EnvelopeParts & { grant: EnrollGrant; grantText: string; grantSeal: SealParams; sealedGrantHex: string };
  staleRequestResponse: EnvelopeParts;
};

test('every vector file is exactly what the code derives, with either Ed25519 implementation', () => {
  for (const ed of [nativeEd25519(), tweetnaclEd25519]) {
    const derived = deriveVectors(ed);
    assert.deepEqual(Object.keys(derived).sort(), ['enrollment.json', 'envelope.json', 'keys.json', 'sealed-box.json']);
    for (const [name, value] of Object.entries(derived)) {
      assert.equal(read(name), vectorFileText(value), `${name} is stale: run node --import tsx scripts/make-vectors.ts`);
    }
  }
});

test('keys: seeds are SHA-256 of their labels, public keys and key ids follow from them', () => {
  for (const party of [keys.fleet, keys.device]) {
    assert.equal(Buffer.from(seedFrom(party.signSeedLabel)).toString('hex'), party.signSeedHex);
    assert.equal(Buffer.from(seedFrom(party.boxSecretKeyLabel)).toString('hex'), party.boxSecretKeyHex);
    const sign = nacl.sign.keyPair.fromSeed(hex(party.signSeedHex));
    assert.equal(Buffer.from(sign.publicKey).toString('hex'), party.signPublicKeyHex);
    assert.equal(Buffer.from(sign.publicKey).toString('base64'), party.signPublicKeyBase64);
    assert.equal(createHash('sha256').update(sign.publicKey).digest('hex').slice(0, 16), party.keyId);
    const box = nacl.box.keyPair.fromSecretKey(hex(party.boxSecretKeyHex));
    assert.equal(Buffer.from(box.publicKey).toString('hex'), party.boxPublicKeyHex);
    assert.equal(Buffer.from(box.publicKey).toString('base64'), party.boxPublicKeyBase64);
  }
});

/** Check an envelope from its published parts alone, with tweetnacl, then with the protocol code. */
function checkEnvelope(parts: EnvelopeParts, signer: Party): SignedPayload {
  assert.equal(Buffer.from(parts.wireText, 'utf8').toString('hex'), parts.wireHex);
  const outer = JSON.parse(parts.wireText) as Record<string, unknown>;
  assert.deepEqual(Object.keys(outer), ['v', 'kid', 'sig', 'body']);
  assert.equal(outer.v, 1);
  assert.equal(outer.kid, signer.keyId);
  assert.equal(parts.kid, signer.keyId);
  assert.equal(outer.body, Buffer.from(parts.payloadHex, 'hex').toString('base64'));
  assert.equal(outer.sig, Buffer.from(parts.signatureHex, 'hex').toString('base64'));
  assert.equal(Buffer.from(parts.payloadText, 'utf8').toString('hex'), parts.payloadHex);
  assert.equal(nacl.sign.detached.verify(hex(parts.payloadHex), hex(parts.signatureHex), hex(signer.signPublicKeyHex)), true);
  const signerKey = hex(signer.signPublicKeyHex);
  return verifyEnvelope(decodeEnvelope(hex(parts.wireHex), DEFAULT_JSON_LIMITS), (kid) => (kid === signer.keyId ? signerKey : undefined), nativeEd25519(), DEFAULT_JSON_LIMITS);
}

test('envelope: the signature covers the payload bytes, and the receiver gets the payload', () => {
  const payload = checkEnvelope(envelope, keys.fleet);
  assert.deepEqual(payload, envelope.payload);
  assert.equal(envelope.payloadText, JSON.stringify(envelope.payload));
});

/** Check a sealed box from its published parts: labels, layout, crypto_box equivalence, opening. */
function checkSealed(sealedHex: string, params: SealParams, messageHex: string, recipient: Party): void {
  // Each label is exactly the text hashed: a third party re-derives the values from it alone.
  assert.equal(Buffer.from(seedFrom(params.ephemeralSecretKeyLabel)).toString('hex'), params.ephemeralSecretKeyHex);
  assert.equal(Buffer.from(seedFrom(params.nonceLabel).subarray(0, 24)).toString('hex'), params.nonceHex);
  const sealed = hex(sealedHex);
  assert.equal(sealed.length, messageHex.length / 2 + 72);
  assert.equal(Buffer.from(nacl.box.keyPair.fromSecretKey(hex(params.ephemeralSecretKeyHex)).publicKey).toString('hex'), params.ephemeralPublicKeyHex);
  assert.equal(Buffer.from(sealed.subarray(0, 32)).toString('hex'), params.ephemeralPublicKeyHex);
  assert.equal(Buffer.from(sealed.subarray(32, 56)).toString('hex'), params.nonceHex);
  const box = nacl.box(hex(messageHex), hex(params.nonceHex), hex(recipient.boxPublicKeyHex), hex(params.ephemeralSecretKeyHex));
  assert.deepEqual(sealed.subarray(56), box);
  const opened = nacl.box.open(sealed.subarray(56), sealed.subarray(32, 56), sealed.subarray(0, 32), hex(recipient.boxSecretKeyHex));
  assert.deepEqual(opened, hex(messageHex));
}

test('sealed box: layout, crypto_box_easy equivalence, and it opens with the recipient key', () => {
  checkSealed(sealedBox.sealedHex, sealedBox, sealedBox.messageHex, keys.fleet);
  assert.equal(Buffer.from(sealedBox.sealedBase64, 'base64').toString('hex'), sealedBox.sealedHex);
  assert.equal(sealedBox.sealedHex.slice(112), sealedBox.cryptoBoxHex);
});

test('enrollment request: device-signed, claim sealed to the fleet, opened by the fleet', () => {
  const { request } = enrollment;
  const payload = checkEnvelope(request, keys.device);
  const data = payload.data as { signPublicKey: string; boxPublicKey: string; sealed: string };
  assert.equal(data.signPublicKey, keys.device.signPublicKeyBase64);
  assert.equal(data.boxPublicKey, keys.device.boxPublicKeyBase64);
  assert.equal(Buffer.from(data.sealed, 'base64').toString('hex'), request.sealedClaimHex);
  assert.equal(request.claimText, JSON.stringify(request.claim));
  checkSealed(request.sealedClaimHex, request.claimSeal, Buffer.from(request.claimText).toString('hex'), keys.fleet);
  const opened = openEnrollRequest(hex(request.wireHex), { fleetId: 'acme', fleetBoxSecretKey: hex(keys.fleet.boxSecretKeyHex), ed: nativeEd25519() });
  assert.deepEqual(opened.claim, request.claim);
  assert.equal(opened.requestId, payload.id);
});

test('enrollment responses: fleet-signed, to the request id, a grant sealed to the device', () => {
  const { request, grantResponse, staleRequestResponse } = enrollment;
  const requestId = (JSON.parse(request.payloadText) as SignedPayload).id;
  const grantPayload = checkEnvelope(grantResponse, keys.fleet);
  assert.equal(grantPayload.to, requestId);
  assert.equal(grantResponse.grantText, JSON.stringify(grantResponse.grant));
  assert.equal((grantPayload.data as { sealed: string }).sealed, Buffer.from(grantResponse.sealedGrantHex, 'hex').toString('base64'));
  checkSealed(grantResponse.sealedGrantHex, grantResponse.grantSeal, Buffer.from(grantResponse.grantText).toString('hex'), keys.device);
  assert.equal(grantResponse.grant.deviceId, deriveDeviceId(keys.device.signPublicKeyBase64));

  const device = {
    signPublicKey: hex(keys.device.signPublicKeyHex), signSecretKey: new Uint8Array(64),
    boxPublicKey: hex(keys.device.boxPublicKeyHex), boxSecretKey: hex(keys.device.boxSecretKeyHex),
  };
  const fleet = { fleetId: 'acme', signPublicKey: hex(keys.fleet.signPublicKeyHex), boxPublicKey: hex(keys.fleet.boxPublicKeyHex) };
  const args = { requestId, fleet, device, ed: nativeEd25519() };
  assert.deepEqual(openEnrollResponse(hex(grantResponse.wireHex), args), { ok: true, grant: grantResponse.grant });

  const stalePayload = checkEnvelope(staleRequestResponse, keys.fleet);
  const stale = openEnrollResponse(hex(staleRequestResponse.wireHex), args);
  assert.equal(stale.ok, false);
  assert.equal(!stale.ok && stale.code, 'STALE_REQUEST');
  assert.equal(!stale.ok && stale.fleetTime, stalePayload.iat);
});

test('every hex or base64 value quoted in docs/protocol.md is in the vector files', () => {
  const doc = readFileSync(join(dir, '..', '..', 'docs', 'protocol.md'), 'utf8');
  const files = ['keys.json', 'envelope.json', 'sealed-box.json', 'enrollment.json'].map(read).join('\n');
  // Hex runs with at least one letter (not the decimal digits of L), and long base64 runs.
  const quoted = [...doc.matchAll(/\b(?=[0-9]*[a-f])[0-9a-f]{32,}\b|[A-Za-z0-9+/]{40,}={0,2}/g)].map((m) => m[0]);
  assert.ok(quoted.length >= 10, 'the document quotes the vectors');
  for (const value of quoted) assert.ok(files.includes(value), `docs/protocol.md quotes ${value.slice(0, 24)}…, which no vector file holds`);
});

test('docs/protocol.md §10 quotes the enrollment payloads whole, and nothing in §10 is cut short', () => {
  const doc = readFileSync(join(dir, '..', '..', 'docs', 'protocol.md'), 'utf8');
  const vectorsSection = doc.slice(doc.indexOf('## 10. Test vectors'));
  for (const parts of [enrollment.request, enrollment.grantResponse, enrollment.staleRequestResponse]) {
    assert.ok(vectorsSection.includes(`\n${parts.payloadText}\n`), `§10 does not quote ${parts.payloadText.slice(0, 60)}… whole`);
    assert.ok(vectorsSection.includes(parts.signatureHex), 'a signature of enrollment.json is missing from §10');
  }
  assert.ok(vectorsSection.includes(`\n${enrollment.request.claimText}\n`), 'vectorsSection.includes(`\\n${enrollment.request.claimText}\\n`)');
  assert.ok(!vectorsSection.includes('…'), '§10 elides a value');
});
