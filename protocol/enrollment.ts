import { randomBytes } from 'node:crypto';
import * as z from 'zod/mini';
import { fromBase64, toBase64, utf8 } from './bytes.js';
import type { Ed25519 } from './ed25519.js';
import { decodeEnvelope, newMessageId, signEnvelope, verifyEnvelope, type SignedPayload } from './envelope.js';
import { TsunaguError, type ErrorCode } from './errors.js';
import { checkSchema, parseJsonBytes, type JsonLimits } from './json.js';
import { keyId, type KeyPairs } from './keys.js';
import { CLIENT_ID_PATTERN } from './client-id.js';
import { openSealed, seal } from './seal.js';
import { DEVICE_ID_PATTERN, REQUEST_ID_PATTERN } from './topics.js';

export const ENROLL_REQUEST_TYPE = 'enroll.request';
export const ENROLL_RESPONSE_TYPE = 'enroll.response';
export const ENROLL_LIMITS: JsonLimits = { maxBytes: 16 * 1024, maxDepth: 8 };
/** How far a request's issue time may be from the service's clock. */
export const ENROLL_MAX_SKEW_MS = 5 * 60_000;
export const ENROLL_REQUEST_LIFETIME_MS = 5 * 60_000;

/** What the device tells the fleet about itself, sealed to the fleet's box key. */
export const DeviceClaimSchema = z.strictObject({
  serial: z.string().check(z.minLength(1), z.maxLength(128)),
  model: z.string().check(z.maxLength(256)),
  arch: z.string().check(z.maxLength(32)),
  macs: z.array(z.string().check(z.regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/))).check(z.maxLength(64)),
  hostname: z.string().check(z.maxLength(255)),
  claimToken: z.optional(z.string().check(z.maxLength(256))),
});
export type DeviceClaim = z.infer<typeof DeviceClaimSchema>;

/** `data` of an enrollment request. */
export const EnrollRequestDataSchema = z.strictObject({
  signPublicKey: z.string(),
  boxPublicKey: z.string(),
  sealed: z.string().check(z.maxLength(12 * 1024)),
});

/** What the fleet grants, sealed to the device's box key. */
export const EnrollGrantSchema = z.strictObject({
  deviceId: z.string().check(z.regex(DEVICE_ID_PATTERN)),
  username: z.string().check(z.regex(DEVICE_ID_PATTERN)),
  password: z.string().check(z.minLength(16), z.maxLength(256)),
  /** A secret (see client-id.ts); the device id itself in grants made before secret client ids. */
  clientId: z.string().check(z.regex(CLIENT_ID_PATTERN)),
});
export type EnrollGrant = z.infer<typeof EnrollGrantSchema>;

/** `data` of an enrollment response: a sealed grant, or a refusal with the fleet's time. */
export const EnrollResponseDataSchema = z.discriminatedUnion('ok', [
  z.strictObject({ ok: z.literal(true), sealed: z.string().check(z.maxLength(8 * 1024)) }),
  z.strictObject({ ok: z.literal(false), code: z.string().check(z.regex(/^[A-Z_]{1,40}$/)), message: z.string().check(z.maxLength(1024)), now: z.int().check(z.nonnegative()) }),
]);

export interface FleetPublicKeys {
  fleetId: string;
  signPublicKey: Uint8Array;
  boxPublicKey: Uint8Array;
}

/**
 * Seals bytes to a box public key. Always `seal` in production; the test
 * vectors pass one with a fixed ephemeral key and nonce to get fixed bytes.
 */
export type Sealer = (message: Uint8Array, recipientBoxPublicKey: Uint8Array) => Uint8Array;

export function newRequestId(): string {
  return randomBytes(16).toString('hex');
}

/** Build a request signed with the device key: the signature is the proof of possession. */
export function buildEnrollRequest(args: {
  requestId: string;
  device: KeyPairs;
  fleet: FleetPublicKeys;
  claim: DeviceClaim;
  now: number;
  ed: Ed25519;
  seal?: Sealer;
}): Uint8Array {
  const sealer = args.seal ?? seal;
  const payload: SignedPayload = {
    typ: ENROLL_REQUEST_TYPE,
    id: args.requestId,
    to: args.fleet.fleetId,
    iat: args.now,
    exp: args.now + ENROLL_REQUEST_LIFETIME_MS,
    data: {
      signPublicKey: toBase64(args.device.signPublicKey),
      boxPublicKey: toBase64(args.device.boxPublicKey),
      sealed: toBase64(sealer(utf8(JSON.stringify(args.claim)), args.fleet.boxPublicKey)),
    },
  };
  return signEnvelope(payload, keyId(args.device.signPublicKey), args.device.signSecretKey, args.ed);
}

export interface EnrollRequest {
  requestId: string;
  issuedAt: number;
  signPublicKey: Uint8Array;
  boxPublicKey: Uint8Array;
  claim: DeviceClaim;
}

/**
 * Verify and open a request. Freshness is checked last and separately
 * (STALE_REQUEST carries the request id) so that the service can answer a
 * device whose clock is wrong with the correct time.
 */
export function openEnrollRequest(bytes: Uint8Array, args: {
  fleetId: string;
  fleetBoxSecretKey: Uint8Array;
  ed: Ed25519;
}): EnrollRequest {
  const env = decodeEnvelope(bytes, ENROLL_LIMITS);
  // The key travels inside the signed body; read it first, then verify
  // the body with it and check the kid names that same key.
  const unverified = checkSchema(z.looseObject({ data: EnrollRequestDataSchema }), parseJsonBytes(env.body, ENROLL_LIMITS), 'request');
  const signPublicKey = fromBase64(unverified.data.signPublicKey, 'signPublicKey', 32);
  const payload = verifyEnvelope(env, (kid) => (kid === keyId(signPublicKey) ? signPublicKey : undefined), args.ed, ENROLL_LIMITS);
  if (payload.typ !== ENROLL_REQUEST_TYPE) throw new TsunaguError('WRONG_TYPE', `expected ${ENROLL_REQUEST_TYPE}, got ${payload.typ}`);
  if (!REQUEST_ID_PATTERN.test(payload.id)) throw new TsunaguError('SCHEMA', 'request id must be 32 hex digits');
  if (payload.to !== args.fleetId) throw new TsunaguError('WRONG_DEVICE', `request is for fleet ${payload.to}`);
  const data = checkSchema(EnrollRequestDataSchema, payload.data, 'request.data');
  const claimBytes = openSealed(fromBase64(data.sealed, 'sealed'), args.fleetBoxSecretKey);
  const claim = checkSchema(DeviceClaimSchema, parseJsonBytes(claimBytes, ENROLL_LIMITS), 'claim');
  return {
    requestId: payload.id,
    issuedAt: payload.iat,
    signPublicKey,
    boxPublicKey: fromBase64(data.boxPublicKey, 'boxPublicKey', 32),
    claim,
  };
}

export function isFresh(issuedAt: number, now: number): boolean {
  return Math.abs(now - issuedAt) <= ENROLL_MAX_SKEW_MS;
}

export type EnrollOutcome =
  | { ok: true; grant: EnrollGrant }
  | { ok: false; code: ErrorCode; message: string };

/** Build the fleet's reply, signed with the fleet key; a grant is sealed to the device's box key. */
export function buildEnrollResponse(args: {
  requestId: string;
  outcome: EnrollOutcome;
  deviceBoxPublicKey: Uint8Array;
  fleet: { signPublicKey: Uint8Array; signSecretKey: Uint8Array };
  now: number;
  ed: Ed25519;
  seal?: Sealer;
  /** The response's own message id; random when absent (fixed only in test vectors). */
  messageId?: string;
}): Uint8Array {
  if (args.outcome.ok) {
    const sealedGrant = toBase64((args.seal ?? seal)(utf8(JSON.stringify(args.outcome.grant)), args.deviceBoxPublicKey));
    return buildSealedGrantResponse({ ...args, sealedGrant });
  }
  const data = { ok: false, code: args.outcome.code, message: args.outcome.message, now: args.now };
  return signFleetResponse(args.requestId, data, args.fleet, args.now, args.ed, args.messageId);
}

/** A grant response around an already sealed grant (a retry reuses the grant sealed earlier). */
export function buildSealedGrantResponse(args: {
  requestId: string;
  sealedGrant: string;
  fleet: { signPublicKey: Uint8Array; signSecretKey: Uint8Array };
  now: number;
  ed: Ed25519;
  messageId?: string;
}): Uint8Array {
  return signFleetResponse(args.requestId, { ok: true, sealed: args.sealedGrant }, args.fleet, args.now, args.ed, args.messageId);
}

function signFleetResponse(
  requestId: string, data: unknown, fleet: { signPublicKey: Uint8Array; signSecretKey: Uint8Array }, now: number, ed: Ed25519,
  messageId: string = newMessageId(),
): Uint8Array {
  const payload: SignedPayload = {
    typ: ENROLL_RESPONSE_TYPE,
    id: messageId,
    to: requestId,
    iat: now,
    exp: now + ENROLL_REQUEST_LIFETIME_MS,
    data,
  };
  return signEnvelope(payload, keyId(fleet.signPublicKey), fleet.signSecretKey, ed);
}

export type EnrollResponse =
  | { ok: true; grant: EnrollGrant }
  /** `code` is a string: a newer fleet may send a code this device does not know yet. */
  | { ok: false; code: ErrorCode | (string & {}); message: string; fleetTime: number };

/**
 * Verify a reply against the fleet key from the bootstrap file. The reply's
 * times are not checked against the device clock, which may be years off on
 * a board without RTC; binding to the fresh request id prevents replays.
 */
export function openEnrollResponse(bytes: Uint8Array, args: {
  requestId: string;
  fleet: FleetPublicKeys;
  device: KeyPairs;
  ed: Ed25519;
}): EnrollResponse {
  const env = decodeEnvelope(bytes, ENROLL_LIMITS);
  const fleetKid = keyId(args.fleet.signPublicKey);
  const payload = verifyEnvelope(env, (kid) => (kid === fleetKid ? args.fleet.signPublicKey : undefined), args.ed, ENROLL_LIMITS);
  if (payload.typ !== ENROLL_RESPONSE_TYPE) throw new TsunaguError('WRONG_TYPE', `expected ${ENROLL_RESPONSE_TYPE}, got ${payload.typ}`);
  if (payload.to !== args.requestId) throw new TsunaguError('WRONG_DEVICE', 'reply is for another request');
  const data = checkSchema(EnrollResponseDataSchema, payload.data, 'response.data');
  if (!data.ok) return { ok: false, code: data.code, message: data.message, fleetTime: data.now };
  const grantBytes = openSealed(fromBase64(data.sealed, 'sealed'), args.device.boxSecretKey);
  return { ok: true, grant: checkSchema(EnrollGrantSchema, parseJsonBytes(grantBytes, ENROLL_LIMITS), 'grant') };
}
