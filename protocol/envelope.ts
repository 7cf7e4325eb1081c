import { randomBytes } from 'node:crypto';
import * as z from 'zod/mini';
import { fromBase64, toBase64, utf8 } from './bytes.js';
import { isCanonicalSignature as isCanonical, type Ed25519 } from './ed25519.js';
import { TsunaguError } from './errors.js';
import { checkSchema, parseJsonBytes, type JsonLimits } from './json.js';

/**
 * The signed envelope. On the wire (UTF-8 JSON):
 *
 *   {"v":1,"kid":"<16 hex>","sig":"<base64, 64 bytes>","body":"<base64 of the payload bytes>"}
 *
 * The Ed25519 signature covers exactly the payload bytes that `body`
 * decodes to; the payload is itself UTF-8 JSON (see SignedPayload). The
 * outer fields only help the receiver find the key: everything it acts on
 * is inside the signed bytes.
 */
export const ENVELOPE_VERSION = 1;

export const EnvelopeSchema = z.strictObject({
  v: z.literal(ENVELOPE_VERSION),
  kid: z.string().check(z.regex(/^[0-9a-f]{16}$/)),
  sig: z.string().check(z.maxLength(100)),
  body: z.string(),
});

/** A message id: 16 random bytes, hex. */
export const MESSAGE_ID_PATTERN = /^[0-9a-f]{32}$/;

/** W3C trace context `traceparent` (version 00). */
export const TRACEPARENT_PATTERN = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

const count = z.int().check(z.nonnegative());

/** The signed payload. `data` is the typed content, validated by the consumer for its `typ`. */
export const SignedPayloadSchema = z.strictObject({
  /** Message type, e.g. "cmd", "desired", "reply", "enroll.request". */
  typ: z.string().check(z.minLength(1), z.maxLength(40)),
  /** Unique message id: 16 random bytes, hex. Replies refer to it. */
  id: z.string().check(z.regex(MESSAGE_ID_PATTERN)),
  /** Addressee: a device id, a fleet id or, for enrollment replies, the request id. */
  to: z.string().check(z.minLength(1), z.maxLength(64)),
  /** Issue time and expiry, Unix milliseconds, by the signer's clock. */
  iat: count,
  exp: count,
  /** Per-signing-key monotonic counter; fleet-signed messages always carry it. */
  ctr: z.optional(count),
  tp: z.optional(z.string().check(z.regex(TRACEPARENT_PATTERN))),
  data: z.unknown(),
});

export type SignedPayload = z.infer<typeof SignedPayloadSchema>;

export interface OpenedEnvelope {
  kid: string;
  signature: Uint8Array;
  body: Uint8Array;
}

export function newMessageId(): string {
  return randomBytes(16).toString('hex');
}

export function signEnvelope(payload: SignedPayload, kid: string, secretKey: Uint8Array, ed: Ed25519): Uint8Array {
  const body = utf8(JSON.stringify(payload));
  const sig = ed.sign(body, secretKey);
  return utf8(JSON.stringify({ v: ENVELOPE_VERSION, kid, sig: toBase64(sig), body: toBase64(body) }));
}

/** Decode the outer layer. Throws MALFORMED / TOO_LARGE / TOO_DEEP / SCHEMA / UNSIGNED. */
export function decodeEnvelope(bytes: Uint8Array, limits: JsonLimits): OpenedEnvelope {
  const raw = parseJsonBytes(bytes, { maxBytes: limits.maxBytes, maxDepth: 4 });
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw) && !('sig' in raw)) {
    throw new TsunaguError('UNSIGNED', 'the message carries no signature');
  }
  const env = checkSchema(EnvelopeSchema, raw, 'envelope');
  return { kid: env.kid, signature: fromBase64(env.sig, 'sig', 64), body: fromBase64(env.body, 'body') };
}

/**
 * Verify the signature with the key `lookup` finds for the kid, then parse
 * the signed payload. Checks here are the ones that need no receiver state;
 * addressing, expiry and replay are decided by the receiver's policy.
 */
export function verifyEnvelope(
  env: OpenedEnvelope,
  lookup: (kid: string) => Uint8Array | undefined,
  ed: Ed25519,
  limits: JsonLimits,
): SignedPayload {
  return checkSchema(SignedPayloadSchema, verifySignedBody(env, lookup, ed, limits), 'payload');
}

/**
 * The signature check of `verifyEnvelope` alone: the signed body parsed as
 * JSON but not yet held to the payload schema, for a receiver that answers a
 * verified message even when its payload is refused.
 */
export function verifySignedBody(
  env: OpenedEnvelope,
  lookup: (kid: string) => Uint8Array | undefined,
  ed: Ed25519,
  limits: JsonLimits,
): unknown {
  const publicKey = lookup(env.kid);
  if (publicKey === undefined) throw new TsunaguError('UNKNOWN_KEY', `no trusted key with id ${env.kid}`);
  verifySignatureBytes(env.body, env.signature, publicKey, ed);
  return parseJsonBytes(env.body, limits);
}

/** The `id` and `tp` of a verified body whose payload was refused, when they have their valid form. */
export function readableIds(body: unknown): { id: string; tp: string | undefined } | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const { id, tp } = body as { id?: unknown; tp?: unknown };
  if (typeof id !== 'string' || !MESSAGE_ID_PATTERN.test(id)) return undefined;
  return { id, tp: typeof tp === 'string' && TRACEPARENT_PATTERN.test(tp) ? tp : undefined };
}

export function verifySignatureBytes(body: Uint8Array, signature: Uint8Array, publicKey: Uint8Array, ed: Ed25519): void {
  if (!isCanonical(signature)) throw new TsunaguError('NON_CANONICAL_SIGNATURE');
  if (!ed.verify(body, signature, publicKey)) throw new TsunaguError('BAD_SIGNATURE');
}
