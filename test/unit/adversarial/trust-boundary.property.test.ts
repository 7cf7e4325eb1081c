import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { unsealDesired } from '../../../agent/desired/unseal.js';
import { parseDesiredState, parseDesiredStateYaml } from '../../../protocol/compose/compose-schema.js';
import { toBase64, utf8 } from '../../../protocol/bytes.js';
import { COMMAND_LIMITS, CommandSchema, DESIRED_LIMITS, ReplyDataSchema } from '../../../protocol/commands.js';
import { DesiredDataSchema, ReportedStateSchema } from '../../../protocol/desired.js';
import { nativeEd25519 } from '../../../protocol/ed25519.js';
import { buildEnrollRequest, openEnrollRequest, openEnrollResponse, buildEnrollResponse } from '../../../protocol/enrollment.js';
import { decodeEnvelope, signEnvelope, verifyEnvelope, type SignedPayload } from '../../../protocol/envelope.js';
import { ERROR_CODES, isTsunaguError } from '../../../protocol/errors.js';
import { checkSchema, parseJsonWith } from '../../../protocol/json.js';
import { generateKeyPairs, keyId } from '../../../protocol/keys.js';
import { InventoryReportSchema, MetricsReportSchema } from '../../../protocol/reports.js';

/**
 * Every parser at a trust boundary, fed 25,000 hostile inputs each (100,000 or
 * more with TSUNAGU_PROPERTY_RUNS for a long run): random
 * bytes, random JSON, envelopes with random fields, correctly signed
 * envelopes around random payloads (what a stolen key or a buggy fleet
 * manager sends), and valid messages with bytes flipped, cut or spliced.
 * Each call either returns or throws a TsunaguError with a known code —
 * never a TypeError, a RangeError, a stack overflow or a hang (a hang fails
 * the run by its timeout).
 */
// 25,000 keeps the file at about 20 s of CPU: at 100,000 it needed ~100 s of CPU,
// which on the two-core CI beside the engine lane came close to the runner's
// 180 s limit per file (it failed once on a loaded machine).
const RUNS = Number(process.env.TSUNAGU_PROPERTY_RUNS ?? 25_000);
const ed = nativeEd25519();
const fleet = generateKeyPairs();
const device = generateKeyPairs();
const fleetKid = keyId(fleet.signPublicKey);
const DEVICE_ID = 'd-0123456789abcdef0123';
const FLEET_ID = 'f-0123456789abcdef0123';

function onlyTypedErrors(what: string, fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!isTsunaguError(err) || !(err.code in ERROR_CODES)) {
      assert.fail(`${what} threw an untyped error: ${err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ''}` : String(err)}`);
    }
  }
}

const jsonish = fc.jsonValue({ maxDepth: 6 });
const smallString = fc.string({ maxLength: 40 });
const base64ish = fc.oneof(fc.base64String({ maxLength: 120 }), smallString, fc.uint8Array({ maxLength: 90 }).map((b) => toBase64(b)));

/** The signed payload's fields, each sometimes right, sometimes any JSON. */
function payloadArb(typ: string, data: fc.Arbitrary<unknown>): fc.Arbitrary<Record<string, unknown>> {
  const maybe = <T>(good: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({ weight: 4, arbitrary: good }, { weight: 1, arbitrary: jsonish });
  return fc.record({
    typ: maybe(fc.constantFrom(typ, 'cmd', 'desired', 'x')),
    id: maybe(fc.stringMatching(/^[0-9a-f]{32}$/)),
    to: maybe(fc.constantFrom(DEVICE_ID, FLEET_ID, '')),
    iat: maybe(fc.integer({ min: 0, max: 4_000_000_000_000 })),
    exp: maybe(fc.integer({ min: 0, max: 4_000_000_000_000 })),
    ctr: maybe(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
    tp: maybe(fc.constantFrom('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'junk')),
    data,
  }, { requiredKeys: ['typ', 'id', 'data'] });
}

/** Sign anything, even what `SignedPayload` forbids: the receiver must cope with a signer who lies. */
const signAny = (payload: Record<string, unknown>, secretKey = fleet.signSecretKey, kid = fleetKid): Uint8Array =>
  signEnvelope(payload as unknown as SignedPayload, kid, secretKey, ed);

/** Flip, cut, splice or duplicate bytes of a valid message. */
function mutated(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(valid, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'cut', 'insert', 'dup')), { minLength: 1, maxLength: 4 }))
    .map(([bytes, edits]) => {
      let b = Buffer.from(bytes);
      for (const [pos, value, op] of edits) {
        const i = b.length === 0 ? 0 : pos % b.length;
        if (op === 'flip') b[i] = (b[i] ?? 0) ^ (value | 1);
        else if (op === 'cut') b = b.subarray(0, i);
        else if (op === 'insert') b = Buffer.concat([b.subarray(0, i), Buffer.from([value]), b.subarray(i)]);
        else b = Buffer.concat([b.subarray(0, i), b.subarray(i, i + 32), b.subarray(i)]);
      }
      return new Uint8Array(b);
    });
}

/** Outer envelopes with random or wrong fields. */
const envelopeShaped = fc.record({
  v: fc.oneof(fc.constant(1), jsonish), kid: fc.oneof(fc.constant(fleetKid), jsonish), sig: fc.oneof(base64ish, jsonish), body: fc.oneof(base64ish, jsonish),
}, { requiredKeys: [] }).map((o) => utf8(JSON.stringify(o)));

function hostile(valid: fc.Arbitrary<Uint8Array>, signedGarbage: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 512 }),
    jsonish.map((v) => utf8(JSON.stringify(v))),
    envelopeShaped,
    { weight: 3, arbitrary: signedGarbage },
    { weight: 3, arbitrary: mutated(valid) },
  );
}

const commandData = fc.oneof(
  fc.record({ name: fc.constantFrom('ping', 'report-now', 'restart', 'stop', 'start', 'logs', 'rotate-credentials', 'reread-desired', 'rm -rf /'), args: fc.oneof(jsonish, fc.record({ service: smallString, lines: fc.integer() }, { requiredKeys: [] })) }, { requiredKeys: ['name'] }),
  jsonish,
);

/** A compose-like document: the right keys with any values, plus stray ones. */
const serviceKeys = ['image', 'command', 'entrypoint', 'environment', 'ports', 'volumes', 'restart', 'healthcheck', 'depends_on', 'network_mode', 'devices', 'labels', 'mem_limit', 'stop_grace_period', 'stop_signal', 'deploy', 'logging', 'x-tsunagu', 'privileged', 'build'];
const serviceArb = fc.dictionary(fc.constantFrom(...serviceKeys), fc.oneof(jsonish, smallString, fc.array(smallString, { maxLength: 4 })), { maxKeys: 8 });
const composeArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ services: fc.dictionary(fc.oneof(fc.constantFrom('web', 'db', '__proto__', 'constructor'), smallString), serviceArb, { maxKeys: 4 }), name: fc.oneof(smallString, jsonish), volumes: jsonish, 'x-tsunagu': jsonish }, { requiredKeys: ['services'] }) },
  { weight: 1, arbitrary: jsonish },
);
const desiredData = fc.oneof(
  fc.record({ version: fc.oneof(fc.integer({ min: -1, max: 1e9 }), jsonish), compose: composeArb, sealed: fc.oneof(jsonish, fc.record({ environment: fc.dictionary(smallString, fc.dictionary(smallString, base64ish)) }, { requiredKeys: [] })) }, { requiredKeys: ['version', 'compose'] }),
  jsonish,
);

describe(`trust-boundary parsers: ${RUNS} hostile inputs each, only typed errors`, () => {
  test('device: a command message (envelope, fleet signature, command schema)', () => {
    const valid = fc.constant(signAny({ typ: 'cmd', id: '00112233445566778899aabbccddeeff', to: DEVICE_ID, iat: 1, exp: 2, ctr: 3, data: { name: 'ping' } }));
    const signed = payloadArb('cmd', commandData).map((p) => signAny(p));
    fc.assert(fc.property(hostile(valid, signed), (bytes) => {
      onlyTypedErrors('command', () => {
        const payload = verifyEnvelope(decodeEnvelope(bytes, COMMAND_LIMITS), (k) => (k === fleetKid ? fleet.signPublicKey : undefined), ed, COMMAND_LIMITS);
        checkSchema(CommandSchema, payload.data, 'command');
      });
    }), { numRuns: RUNS });
  });

  test('device: a desired-state message (envelope, schema, sealed secrets, Compose subset)', () => {
    const valid = fc.constant(signAny({ typ: 'desired', id: '00112233445566778899aabbccddeeff', to: DEVICE_ID, iat: 1, exp: 2, ctr: 3, data: { version: 1, compose: { services: { web: { image: 'busybox' } } } } }));
    const signed = payloadArb('desired', desiredData).map((p) => signAny(p));
    fc.assert(fc.property(hostile(valid, signed), (bytes) => {
      onlyTypedErrors('desired', () => {
        const payload = verifyEnvelope(decodeEnvelope(bytes, DESIRED_LIMITS), (k) => (k === fleetKid ? fleet.signPublicKey : undefined), ed, DESIRED_LIMITS);
        const data = checkSchema(DesiredDataSchema, payload.data, 'desired');
        parseDesiredState(unsealDesired(data, device.boxSecretKey).compose);
      });
    }), { numRuns: RUNS });
  });

  test('fleet CLI and device: a desired state as YAML text', () => {
    const yamlish = fc.oneof(
      fc.string({ maxLength: 300 }),
      composeArb.map((c) => JSON.stringify(c)), // JSON is YAML
      fc.constantFrom('a: &a [*a]', 'x: !!binary AAAA', 'services: {web: {image: x, <<: *nope}}', '- - - - - - - - -', 'services:\n  web:\n    image: x\n    image: y'),
      fc.array(fc.constantFrom('services:', '  web:', '    image: busybox', '    ports: ["80:80"]', '    mem_limit: 1e999', '&a', '*a', '<<: *a', '  - x', ':', '"', "'", '{', '['), { maxLength: 12 }).map((l) => l.join('\n')),
    );
    fc.assert(fc.property(yamlish, (text) => { onlyTypedErrors('yaml', () => parseDesiredStateYaml(text)); }), { numRuns: RUNS });
  });

  test('enrollment service: an enrollment request (self-signed envelope, sealed claim)', () => {
    const request = (claim: unknown, requestId = '00112233445566778899aabbccddeeff'): Uint8Array => buildEnrollRequest({
      requestId, device, fleet: { fleetId: FLEET_ID, signPublicKey: fleet.signPublicKey, boxPublicKey: fleet.boxPublicKey }, claim: claim as never, now: 1, ed,
    });
    // A pool of valid requests, made once: sealing every case would cost more than the parsing under test.
    const pool = [request({ serial: 'abc', token: 't' }), ...Array.from({ length: 20 }, (_, i) => request({ serial: `s${i}`, junk: [i, { deep: [[[i]]] }] }))];
    const valid = fc.constantFrom(...pool);
    const signedGarbage = payloadArb('tsunagu.enroll.request', fc.oneof(jsonish, fc.record({ signPublicKey: base64ish, boxPublicKey: base64ish, sealed: base64ish }, { requiredKeys: [] })))
      .map((p) => signAny(p, device.signSecretKey, keyId(device.signPublicKey)));
    fc.assert(fc.property(hostile(valid, signedGarbage), (bytes) => {
      onlyTypedErrors('enroll request', () => openEnrollRequest(bytes, { fleetId: FLEET_ID, fleetBoxSecretKey: fleet.boxSecretKey, ed }));
    }), { numRuns: RUNS });
  });

  test('device: an enrollment response (fleet-signed, bound to the request id)', () => {
    const requestId = '00112233445566778899aabbccddeeff';
    const valid = fc.constant(buildEnrollResponse({
      requestId, fleet, ed, now: 1, deviceBoxPublicKey: device.boxPublicKey, outcome: { ok: false, code: 'CLAIM_PENDING', message: 'wait' },
    }));
    const signed = payloadArb('tsunagu.enroll.response', fc.oneof(jsonish, fc.record({ ok: fc.boolean(), code: smallString, message: smallString, now: fc.integer(), sealed: base64ish }, { requiredKeys: [] })))
      .map((p) => signAny(p));
    fc.assert(fc.property(hostile(valid, signed), (bytes) => {
      onlyTypedErrors('enroll response', () => openEnrollResponse(bytes, {
        requestId, device, ed, fleet: { fleetId: FLEET_ID, signPublicKey: fleet.signPublicKey, boxPublicKey: fleet.boxPublicKey },
      }));
    }), { numRuns: RUNS });
  });

  test('fleet: what devices send (reported state, reports, replies)', () => {
    const schemas = [ReportedStateSchema, InventoryReportSchema, MetricsReportSchema, ReplyDataSchema] as const;
    const input = fc.tuple(fc.nat({ max: schemas.length - 1 }), fc.oneof(fc.uint8Array({ maxLength: 256 }), jsonish.map((v) => utf8(JSON.stringify(v)))));
    fc.assert(fc.property(input, ([i, bytes]) => {
      onlyTypedErrors('device message', () => parseJsonWith(schemas[i] as never, bytes, 'device message'));
    }), { numRuns: RUNS });
  });
});

test('the helpers themselves are not vacuous: an untyped throw fails', () => {
  assert.throws(() => onlyTypedErrors('x', () => { throw new TypeError('boom'); }), /untyped error: TypeError: boom/);
  assert.doesNotThrow(() => onlyTypedErrors('x', () => checkSchema(CommandSchema, { name: 42 }, 'c')));
});
