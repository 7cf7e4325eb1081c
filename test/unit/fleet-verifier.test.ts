import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FleetVerifier } from '../../agent/commands/fleet-verifier.js';
import { EMPTY_REPLAY_STATE } from '../../agent/commands/replay-guard.js';
import { COMMAND_LIMITS, DESIRED_LIMITS } from '../../protocol/commands.js';
import { defaultEd25519 } from '../../protocol/ed25519.js';
import { newMessageId, signEnvelope, type SignedPayload } from '../../protocol/envelope.js';
import { isTsunaguError } from '../../protocol/errors.js';
import { generateKeyPairs, keyId } from '../../protocol/keys.js';

// The one verifier both channels share, with real signatures: what each
// channel relies on it to refuse.
const ed = defaultEd25519();
const fleet = generateKeyPairs();
const stranger = generateKeyPairs();
const DEVICE = 'd-0123456789abcdef0123';
const NOW = Date.parse('2026-12-08T12:00:00Z');
let ctr = 0;

const verifier = new FleetVerifier({
  deviceId: DEVICE,
  fleetKeys: new Map([[keyId(fleet.signPublicKey), fleet.signPublicKey]]),
  ed, clock: { now: () => NOW }, clockTrusted: () => true, bootClock: () => ({ boot: 'b1', ms: 60_000 }),
});

function signed(over: Partial<SignedPayload> = {}, keys = fleet): { bytes: Uint8Array; payload: SignedPayload } {
  const payload: SignedPayload = { typ: 'desired', id: newMessageId(), to: DEVICE, iat: NOW, exp: NOW + 60_000, ctr: ++ctr, data: {}, ...over };
  return { bytes: signEnvelope(payload, keyId(keys.signPublicKey), keys.signSecretKey, ed), payload };
}

function code(work: () => unknown): string {
  try {
    work();
  } catch (err) {
    assert.ok(isTsunaguError(err), String(err));
    return err.code;
  }
  return 'accepted';
}

test('verifyAddressed accepts a fleet-signed message of its type for this device, and refuses the rest by code', () => {
  const good = signed();
  assert.deepEqual(verifier.verifyAddressed(good.bytes, 'desired', DESIRED_LIMITS), good.payload);
  assert.equal(code(() => verifier.verifyAddressed(signed({ typ: 'cmd' }).bytes, 'desired', DESIRED_LIMITS)), 'WRONG_TYPE');
  assert.equal(code(() => verifier.verifyAddressed(signed({ to: 'd-another' }).bytes, 'desired', DESIRED_LIMITS)), 'WRONG_DEVICE');
  assert.equal(code(() => verifier.verifyAddressed(signed({}, stranger).bytes, 'desired', DESIRED_LIMITS)), 'UNKNOWN_KEY');
  // The fleet's key id on a stranger's signature.
  const forged = signEnvelope(signed().payload, keyId(fleet.signPublicKey), stranger.signSecretKey, ed);
  assert.equal(code(() => verifier.verifyAddressed(forged, 'desired', DESIRED_LIMITS)), 'BAD_SIGNATURE');
});

test('open, payloadOf and guard: a command is accepted once, its replay refused, with the verifier\'s clock', () => {
  const { bytes } = signed({ typ: 'cmd' });
  const { body, kid } = verifier.open(bytes, COMMAND_LIMITS);
  const payload = verifier.payloadOf(body, 'cmd');
  const first = verifier.guard(EMPTY_REPLAY_STATE, payload, kid);
  assert.equal(first.accept, true);
  assert.ok(first.accept, 'first.accept');
  const again = verifier.guard(first.next, payload, kid);
  assert.deepEqual(again.accept ? 'accepted' : again.code, 'REPLAYED');
  // Judged by the injected clock (trusted): a message that expired before it is refused.
  const old = verifier.payloadOf(verifier.open(signed({ typ: 'cmd', iat: NOW - 120_000, exp: NOW - 60_000 }).bytes).body, 'cmd');
  const expired = verifier.guard(first.next, old, kid);
  assert.deepEqual(expired.accept ? 'accepted' : expired.code, 'EXPIRED');
  const elsewhere = verifier.guard(first.next, { ...payload, id: newMessageId(), ctr: ++ctr, to: 'd-another' }, kid);
  assert.deepEqual(elsewhere.accept ? 'accepted' : elsewhere.code, 'WRONG_DEVICE');
});
