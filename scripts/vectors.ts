import { createHash } from 'node:crypto';
import nacl from 'tweetnacl';
import { toBase64, toHex, utf8 } from '../protocol/bytes.js';
import type { Ed25519 } from '../protocol/ed25519.js';
import {
  buildEnrollRequest, buildEnrollResponse, type DeviceClaim, type EnrollGrant, type Sealer,
} from '../protocol/enrollment.js';
import { signEnvelope, type SignedPayload } from '../protocol/envelope.js';
import { keyId, type KeyPairs } from '../protocol/keys.js';
import { sealWith } from '../protocol/seal.js';
import { deriveDeviceId } from '../provisioning/fleet-database.js';

/**
 * The protocol's test vectors, derived from fixed seeds by the protocol code
 * itself. `scripts/make-vectors.ts` writes them to protocol/vectors/; the
 * unit test test/unit/vectors.test.ts derives them again and compares, so
 * the published files cannot drift from the code.
 *
 * Every secret is SHA-256 of a label, so anyone can re-derive it.
 */
export function seedFrom(label: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(label, 'utf8').digest());
}

const hex = toHex;
const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');

interface PartyKeys {
  keys: KeyPairs;
  json: Record<string, string>;
}

function party(name: string): PartyKeys {
  const signSeedLabel = `tsunagu test vector ${name} sign seed`;
  const boxSecretLabel = `tsunagu test vector ${name} box secret key`;
  const sign = nacl.sign.keyPair.fromSeed(seedFrom(signSeedLabel));
  const box = nacl.box.keyPair.fromSecretKey(seedFrom(boxSecretLabel));
  const keys: KeyPairs = { signPublicKey: sign.publicKey, signSecretKey: sign.secretKey, boxPublicKey: box.publicKey, boxSecretKey: box.secretKey };
  return {
    keys,
    json: {
      signSeedLabel,
      signSeedHex: hex(sign.secretKey.subarray(0, 32)),
      signPublicKeyHex: hex(sign.publicKey),
      signPublicKeyBase64: toBase64(sign.publicKey),
      keyId: keyId(sign.publicKey),
      boxSecretKeyLabel: boxSecretLabel,
      boxSecretKeyHex: hex(box.secretKey),
      boxPublicKeyHex: hex(box.publicKey),
      boxPublicKeyBase64: toBase64(box.publicKey),
    },
  };
}

/** A sealer with a fixed ephemeral key and nonce; never to be used outside vectors. */
function fixedSealer(label: string): { sealer: Sealer; json: Record<string, string> } {
  const ephemeralSecretKey = seedFrom(`tsunagu test vector ${label} ephemeral secret key`);
  const nonce = seedFrom(`tsunagu test vector ${label} nonce`).subarray(0, 24);
  return {
    sealer: (message, recipient) => sealWith(message, recipient, ephemeralSecretKey, nonce),
    json: {
      ephemeralSecretKeyLabel: `tsunagu test vector ${label} ephemeral secret key`,
      ephemeralSecretKeyHex: hex(ephemeralSecretKey),
      ephemeralPublicKeyHex: hex(nacl.box.keyPair.fromSecretKey(ephemeralSecretKey).publicKey),
      // The label is exactly the hashed text; the nonce is the first 24 bytes of its SHA-256.
      nonceLabel: `tsunagu test vector ${label} nonce`,
      nonceHex: hex(nonce),
    },
  };
}

/** The parts of an envelope on the wire, for the vector files. */
function envelopeParts(wire: Uint8Array): Record<string, unknown> {
  const outer = JSON.parse(text(wire)) as { kid: string; sig: string; body: string };
  const body = Buffer.from(outer.body, 'base64');
  return {
    kid: outer.kid,
    payloadText: body.toString('utf8'),
    payloadHex: body.toString('hex'),
    signatureHex: Buffer.from(outer.sig, 'base64').toString('hex'),
    wireText: text(wire),
    wireHex: hex(wire),
  };
}

export type VectorFiles = Record<string, unknown>;

/** Every vector file, by file name. `ed` signs (both implementations give the same bytes). */
export function deriveVectors(ed: Ed25519): VectorFiles {
  const fleet = party('fleet');
  const device = party('device');

  const keys = {
    description: 'Key pairs of the vectors. Ed25519 key pair from a 32-byte seed (RFC 8032); X25519 key pair from a 32-byte secret key (crypto_box / crypto_scalarmult_base). keyId = hex of the first 8 bytes of SHA-256(Ed25519 public key). Each seed or secret key is SHA-256 of its label (UTF-8).',
    fleet: fleet.json,
    device: device.json,
  };

  const envelopePayload: SignedPayload = {
    typ: 'vector.example',
    id: '000102030405060708090a0b0c0d0e0f',
    to: 'd-0123456789abcdef0123',
    iat: 1767225600000,
    exp: 1767225660000,
    ctr: 42,
    tp: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    data: { text: 'héllo, 世界', n: 1 },
  };
  const envelopeWire = signEnvelope(envelopePayload, fleet.json.keyId!, fleet.keys.signSecretKey, ed);
  const envelope = {
    description: 'A payload signed by the fleet key. The signature is Ed25519 over exactly payloadHex (the bytes body decodes to); the receiver verifies those bytes and parses them, it never re-serialises. typ "vector.example" is not a real message type.',
    signer: 'fleet',
    payload: envelopePayload,
    ...envelopeParts(envelopeWire),
  };

  const boxSealer = fixedSealer('sealed box');
  const boxMessage = utf8('{"serial":"0001","note":"sealed to the fleet"}');
  const sealed = boxSealer.sealer(boxMessage, fleet.keys.boxPublicKey);
  const sealedBox = {
    description: 'A sealed box to the fleet box key: ephemeral public key (32) ‖ nonce (24) ‖ crypto_box_easy(message, nonce, recipient public key, ephemeral secret key). cryptoBoxHex is that last part alone (16-byte Poly1305 tag, then the ciphertext). The ephemeral secret key is SHA-256(ephemeralSecretKeyLabel); the nonce is the first 24 bytes of SHA-256(nonceLabel).',
    recipient: 'fleet',
    ...boxSealer.json,
    messageText: text(boxMessage),
    messageHex: hex(boxMessage),
    cryptoBoxHex: hex(sealed.subarray(56)),
    sealedHex: hex(sealed),
    sealedBase64: toBase64(sealed),
  };

  const fleetPublic = { fleetId: 'acme', signPublicKey: fleet.keys.signPublicKey, boxPublicKey: fleet.keys.boxPublicKey };
  const requestId = '8f0e1d2c3b4a59687766554433221100';
  const requestTime = 1767225600000;
  const claim: DeviceClaim = {
    serial: '10000000c0ffee01', model: 'Raspberry Pi 4 Model B Rev 1.4', arch: 'arm64',
    macs: ['dc:a6:32:01:02:03'], hostname: 'edge-01', claimToken: 'batch-2026-01',
  };
  const claimSealer = fixedSealer('enrollment claim');
  const requestWire = buildEnrollRequest({ requestId, device: device.keys, fleet: fleetPublic, claim, now: requestTime, ed, seal: claimSealer.sealer });

  // The id tsunagu's fleet gives this device key (provisioning/fleet-database.ts deriveDeviceId).
  const deviceId = deriveDeviceId(toBase64(device.keys.signPublicKey));
  const grant: EnrollGrant = { deviceId, username: deviceId, clientId: 'dc-vector-client-id-not-secret-0000', password: 'vector-password-not-secret-000000' };
  const grantSealer = fixedSealer('enrollment grant');
  const responseTime = requestTime + 850;
  const grantWire = buildEnrollResponse({
    requestId, outcome: { ok: true, grant }, deviceBoxPublicKey: device.keys.boxPublicKey,
    fleet: fleet.keys, now: responseTime, ed, seal: grantSealer.sealer, messageId: 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf',
  });
  const staleWire = buildEnrollResponse({
    requestId, outcome: { ok: false, code: 'STALE_REQUEST', message: 'request time is outside the accepted window; retry with the fleet time' },
    deviceBoxPublicKey: device.keys.boxPublicKey, fleet: fleet.keys, now: responseTime, ed, messageId: 'b0b1b2b3b4b5b6b7b8b9babbbcbdbebf',
  });
  const enrollment = {
    description: 'One enrollment exchange between the device and fleet "acme" of keys.json. The request is signed by the device key (kid = device keyId) and carries the claim sealed to the fleet box key; the responses are signed by the fleet key and addressed ("to") to the request id; a grant travels sealed to the device box key.',
    request: {
      topic: 'tsunagu/enroll/request',
      claim,
      claimText: JSON.stringify(claim),
      claimSeal: claimSealer.json,
      sealedClaimHex: hex(claimSealer.sealer(utf8(JSON.stringify(claim)), fleet.keys.boxPublicKey)),
      ...envelopeParts(requestWire),
    },
    grantResponse: {
      topic: `tsunagu/enroll/response/${requestId}`,
      deviceIdDerivation: '"d-" + first 20 hex digits of SHA-256("tsunagu-device-id:" + base64 of the device Ed25519 public key)',
      grant,
      grantText: JSON.stringify(grant),
      grantSeal: grantSealer.json,
      sealedGrantHex: hex(grantSealer.sealer(utf8(JSON.stringify(grant)), device.keys.boxPublicKey)),
      ...envelopeParts(grantWire),
    },
    staleRequestResponse: {
      topic: `tsunagu/enroll/response/${requestId}`,
      ...envelopeParts(staleWire),
    },
  };

  return {
    'keys.json': keys,
    'envelope.json': envelope,
    'sealed-box.json': sealedBox,
    'enrollment.json': enrollment,
  };
}

/** The exact text of a vector file. */
export function vectorFileText(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
