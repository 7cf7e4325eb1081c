import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromBase64, toBase64, utf8 } from '../../protocol/bytes.js';
import { nativeEd25519 } from '../../protocol/ed25519.js';
import {
  buildEnrollRequest, buildEnrollResponse, buildSealedGrantResponse, ENROLL_MAX_SKEW_MS, ENROLL_REQUEST_LIFETIME_MS,
  ENROLL_REQUEST_TYPE, ENROLL_RESPONSE_TYPE, isFresh, openEnrollRequest, openEnrollResponse,
  type DeviceClaim, type EnrollGrant, type FleetPublicKeys,
} from '../../protocol/enrollment.js';
import { decodeEnvelope, signEnvelope, type SignedPayload } from '../../protocol/envelope.js';
import { isTsunaguError, type ErrorCode } from '../../protocol/errors.js';
import { keyId, type KeyPairs } from '../../protocol/keys.js';
import { seal } from '../../protocol/seal.js';
import { keysFrom } from '../support/test-keys.js';

const ed = nativeEd25519();

const fleetKeys = keysFrom(0x10);
const device = keysFrom(0x20);
const intruder = keysFrom(0x30);
const fleet: FleetPublicKeys = { fleetId: 'acme', signPublicKey: fleetKeys.signPublicKey, boxPublicKey: fleetKeys.boxPublicKey };
const openArgs = { fleetId: 'acme', fleetBoxSecretKey: fleetKeys.boxSecretKey, ed };

const claim: DeviceClaim = {
  serial: '10000000abcdef01', model: 'Raspberry Pi 4 Model B Rev 1.4', arch: 'arm64',
  macs: ['dc:a6:32:00:00:01'], hostname: 'pi-01', claimToken: 'batch-7',
};
const grant: EnrollGrant = { deviceId: 'd-0123456789abcdef0123', username: 'd-0123456789abcdef0123', clientId: 'd-0123456789abcdef0123', password: 'aaaaaaaaaaaaaaaaaaaaaaaa' };
const requestId = '0123456789abcdef0123456789abcdef';
const now = 1_750_000_000_000;

const codeIs = (code: ErrorCode) => (e: unknown): boolean => isTsunaguError(e, code);

function request(overrides: Partial<Parameters<typeof buildEnrollRequest>[0]> = {}): Uint8Array {
  return buildEnrollRequest({ requestId, device, fleet, claim, now, ed, ...overrides });
}

/** A request payload signed by hand, to build what buildEnrollRequest never would. */
function signedRequest(payload: Partial<SignedPayload>, signer: KeyPairs = device, kid = keyId(signer.signPublicKey)): Uint8Array {
  const full: SignedPayload = {
    typ: ENROLL_REQUEST_TYPE, id: requestId, to: 'acme', iat: now, exp: now + ENROLL_REQUEST_LIFETIME_MS,
    data: {
      signPublicKey: toBase64(signer.signPublicKey),
      boxPublicKey: toBase64(signer.boxPublicKey),
      sealed: toBase64(seal(utf8(JSON.stringify(claim)), fleet.boxPublicKey)),
    },
    ...payload,
  };
  return signEnvelope(full, kid, signer.signSecretKey, ed);
}

function response(outcome: Parameters<typeof buildEnrollResponse>[0]['outcome'], overrides: Partial<Parameters<typeof buildEnrollResponse>[0]> = {}): Uint8Array {
  return buildEnrollResponse({ requestId, outcome, deviceBoxPublicKey: device.boxPublicKey, fleet: fleetKeys, now, ed, ...overrides });
}

const openResponseArgs = { requestId, fleet, device, ed };

test('request round trip: the fleet reads the device keys, the time and the sealed claim', () => {
  const opened = openEnrollRequest(request(), openArgs);
  assert.equal(opened.requestId, requestId);
  assert.equal(opened.issuedAt, now);
  assert.deepEqual(opened.signPublicKey, device.signPublicKey);
  assert.deepEqual(opened.boxPublicKey, device.boxPublicKey);
  assert.deepEqual(opened.claim, claim);
});

test('request on the wire: signed by the device key under its own kid, the claim unreadable without the fleet key', () => {
  const bytes = request();
  const env = decodeEnvelope(bytes, { maxBytes: 16384, maxDepth: 8 });
  assert.equal(env.kid, keyId(device.signPublicKey));
  const body = JSON.parse(Buffer.from(env.body).toString('utf8')) as SignedPayload & { data: { sealed: string } };
  assert.equal(body.typ, 'enroll.request');
  assert.equal(body.to, 'acme');
  assert.equal(body.exp - body.iat, ENROLL_REQUEST_LIFETIME_MS);
  assert.equal(Buffer.from(bytes).includes('10000000abcdef01'), false, 'the serial travels sealed');
  assert.equal(Buffer.from(bytes).includes('batch-7'), false, 'the claim token travels sealed');
  assert.ok(fromBase64(body.data.sealed, 'sealed').length > 72, "fromBase64(body.data.sealed, 'sealed').length > 72");
});

test('WRONG_DEVICE: a request for another fleet', () => {
  assert.throws(() => openEnrollRequest(request({ fleet: { ...fleet, fleetId: 'other' } }), openArgs), codeIs('WRONG_DEVICE'));
});

test('WRONG_TYPE: a device-signed message of another type on the request topic', () => {
  assert.throws(() => openEnrollRequest(signedRequest({ typ: ENROLL_RESPONSE_TYPE }), openArgs), codeIs('WRONG_TYPE'));
});

test('UNKNOWN_KEY: the kid does not name the key carried in the request', () => {
  assert.throws(() => openEnrollRequest(signedRequest({}, device, keyId(intruder.signPublicKey)), openArgs), codeIs('UNKNOWN_KEY'));
});

test('BAD_SIGNATURE: a request claiming a key it was not signed with', () => {
  // The body names the device's key (and its kid), but the intruder signed it.
  const payload: SignedPayload = {
    typ: ENROLL_REQUEST_TYPE, id: requestId, to: 'acme', iat: now, exp: now + 1,
    data: { signPublicKey: toBase64(device.signPublicKey), boxPublicKey: toBase64(intruder.boxPublicKey), sealed: toBase64(seal(utf8(JSON.stringify(claim)), fleet.boxPublicKey)) },
  };
  const bytes = signEnvelope(payload, keyId(device.signPublicKey), intruder.signSecretKey, ed);
  assert.throws(() => openEnrollRequest(bytes, openArgs), codeIs('BAD_SIGNATURE'));
});

test('SEAL_OPEN_FAILED: a claim sealed to another fleet', () => {
  assert.throws(() => openEnrollRequest(request({ fleet: { ...fleet, boxPublicKey: intruder.boxPublicKey } }), openArgs), codeIs('SEAL_OPEN_FAILED'));
});

test('SCHEMA: a claim outside its schema, or request data with extra fields', () => {
  assert.throws(() => openEnrollRequest(request({ claim: { ...claim, macs: ['DC:A6:32:00:00:01'] } }), openArgs), codeIs('SCHEMA'));
  assert.throws(() => openEnrollRequest(request({ claim: { ...claim, serial: '' } }), openArgs), codeIs('SCHEMA'));
  const extra = signedRequest({ data: { signPublicKey: toBase64(device.signPublicKey), boxPublicKey: toBase64(device.boxPublicKey), sealed: '', more: 1 } });
  assert.throws(() => openEnrollRequest(extra, openArgs), codeIs('SCHEMA'));
});

test('MALFORMED: a key that is not 32 bytes of canonical base64', () => {
  const shortKey = signedRequest({ data: { signPublicKey: toBase64(new Uint8Array(31)), boxPublicKey: toBase64(device.boxPublicKey), sealed: '' } });
  assert.throws(() => openEnrollRequest(shortKey, openArgs), codeIs('MALFORMED'));
});

test('TOO_LARGE: a request over 16 KiB', () => {
  const big = request({ claim: { ...claim, macs: Array.from({ length: 64 }, () => 'dc:a6:32:00:00:01'), model: 'm'.repeat(256), hostname: 'h'.repeat(255) } });
  assert.ok(big.length < 16 * 1024, 'the largest valid claim still fits');
  const padded = utf8(`${Buffer.from(big).toString('utf8').slice(0, -1)}${' '.repeat(16 * 1024)}}`);
  assert.throws(() => openEnrollRequest(padded, openArgs), codeIs('TOO_LARGE'));
});

test('UNSIGNED: a request without a signature', () => {
  const rest = JSON.parse(Buffer.from(request()).toString('utf8')) as Record<string, unknown>;
  delete rest.sig;
  assert.throws(() => openEnrollRequest(utf8(JSON.stringify(rest)), openArgs), codeIs('UNSIGNED'));
});

test('isFresh: STALE_REQUEST beyond 5 minutes either way, inclusive bound', () => {
  assert.equal(ENROLL_MAX_SKEW_MS, 300_000);
  assert.equal(isFresh(now, now), true);
  assert.equal(isFresh(now - ENROLL_MAX_SKEW_MS, now), true);
  assert.equal(isFresh(now + ENROLL_MAX_SKEW_MS, now), true);
  assert.equal(isFresh(now - ENROLL_MAX_SKEW_MS - 1, now), false);
  assert.equal(isFresh(now + ENROLL_MAX_SKEW_MS + 1, now), false);
  assert.equal(isFresh(0, now), false, 'a board that booted in 1970');
});

test('response round trip: a grant sealed to the device', () => {
  assert.deepEqual(openEnrollResponse(response({ ok: true, grant }), openResponseArgs), { ok: true, grant });
});

test('response round trip: a refusal carries its code, message and the fleet time', () => {
  const refusal = response({ ok: false, code: 'STALE_REQUEST', message: 'retry with the fleet time' });
  assert.deepEqual(openEnrollResponse(refusal, openResponseArgs), { ok: false, code: 'STALE_REQUEST', message: 'retry with the fleet time', fleetTime: now });
  const pending = response({ ok: false, code: 'CLAIM_PENDING', message: 'waiting' });
  assert.equal((openEnrollResponse(pending, openResponseArgs) as { code: string }).code, 'CLAIM_PENDING');
});

test('a response reusing an earlier sealed grant opens to the same grant', () => {
  const sealedGrant = toBase64(seal(utf8(JSON.stringify(grant)), device.boxPublicKey));
  const first = buildSealedGrantResponse({ requestId, sealedGrant, fleet: fleetKeys, now, ed });
  const retry = buildSealedGrantResponse({ requestId: 'ffffffffffffffffffffffffffffffff', sealedGrant, fleet: fleetKeys, now: now + 1000, ed });
  assert.deepEqual(openEnrollResponse(first, openResponseArgs), { ok: true, grant });
  assert.deepEqual(openEnrollResponse(retry, { ...openResponseArgs, requestId: 'ffffffffffffffffffffffffffffffff' }), { ok: true, grant });
});

test('response times are not checked against the device clock', () => {
  assert.deepEqual(openEnrollResponse(response({ ok: true, grant }, { now: 0 }), openResponseArgs), { ok: true, grant });
});

test('WRONG_DEVICE: a response to another request', () => {
  assert.throws(() => openEnrollResponse(response({ ok: true, grant }, { requestId: 'ffffffffffffffffffffffffffffffff' }), openResponseArgs), codeIs('WRONG_DEVICE'));
});

test('UNKNOWN_KEY: a response signed by anyone but the fleet key from the bootstrap file', () => {
  assert.throws(() => openEnrollResponse(response({ ok: true, grant }, { fleet: intruder }), openResponseArgs), codeIs('UNKNOWN_KEY'));
});

test('WRONG_TYPE: a fleet-signed message that is not an enrollment response', () => {
  const payload: SignedPayload = { typ: 'cmd', id: requestId, to: requestId, iat: now, exp: now + 1, data: { ok: false, code: 'INTERNAL', message: '', now } };
  assert.throws(() => openEnrollResponse(signEnvelope(payload, keyId(fleetKeys.signPublicKey), fleetKeys.signSecretKey, ed), openResponseArgs), codeIs('WRONG_TYPE'));
});

test('SEAL_OPEN_FAILED: a grant sealed to another device', () => {
  assert.throws(() => openEnrollResponse(response({ ok: true, grant }, { deviceBoxPublicKey: intruder.boxPublicKey }), openResponseArgs), codeIs('SEAL_OPEN_FAILED'));
});

test('a refusal code unknown to this release is still read as a refusal; a code of the wrong form or a grant outside its schema is SCHEMA', () => {
  const sign = (code: string): Uint8Array => signEnvelope({ typ: ENROLL_RESPONSE_TYPE, id: requestId, to: requestId, iat: now, exp: now + 1, data: { ok: false, code, message: 'newer fleet', now } } satisfies SignedPayload, keyId(fleetKeys.signPublicKey), fleetKeys.signSecretKey, ed);
  const answer = openEnrollResponse(sign('NO_SUCH_CODE_YET'), openResponseArgs);
  assert.equal(answer.ok, false);
  assert.equal(!answer.ok && answer.code, 'NO_SUCH_CODE_YET');
  assert.throws(() => openEnrollResponse(sign('lower-case; not a code'), openResponseArgs), codeIs('SCHEMA'));
  assert.throws(() => openEnrollResponse(response({ ok: true, grant: { ...grant, password: 'short' } }), openResponseArgs), codeIs('SCHEMA'));
});

test('MALFORMED: a sealed grant that is not JSON is a protocol error, not a crash', () => {
  const sealed = toBase64(seal(utf8('not json'), device.boxPublicKey));
  const bytes = buildSealedGrantResponse({ requestId, sealedGrant: sealed, fleet: fleetKeys, now, ed });
  assert.throws(() => openEnrollResponse(bytes, openResponseArgs), codeIs('MALFORMED'));
});
