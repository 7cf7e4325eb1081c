import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { MqttClient } from 'mqtt';
import { after, before, test } from 'node:test';
import { toBase64 } from '../../protocol/bytes.js';
import { defaultEd25519 } from '../../protocol/ed25519.js';
import { buildEnrollRequest, newRequestId, openEnrollResponse, type DeviceClaim, type EnrollResponse } from '../../protocol/enrollment.js';
import { generateKeyPairs, type KeyPairs } from '../../protocol/keys.js';
import { deriveDeviceId } from '../../provisioning/fleet-database.js';
import { enrollTopics } from '../../protocol/topics.js';
import { fleetKeysOf } from '../../agent/enrollment/enroller.js';
import type { DeviceRecord } from '../../provisioning/fleet-database.js';
import { FLEET_BUNDLE } from '../support/agent-process.js';
import { createTestFleet, type TestFleet } from '../support/fleet.js';
import { startMosquitto, type TestBroker } from '../support/mosquitto.js';
import { malleate } from '../support/malleate.js';
import { connectAs } from '../support/mqtt-probe.js';

// Every bad request a holder of the bootstrap credential can send, against
// the real service and broker. The service must answer what it safely can,
// audit everything, and keep serving.
const ed = defaultEd25519();
let broker: TestBroker;
let tf: TestFleet;
let boot: MqttClient;

function claimFor(serial: string, token?: string): DeviceClaim {
  return { serial, model: 'test-board', arch: 'arm64', macs: ['02:00:00:00:00:01'], hostname: 'dev', ...(token === undefined ? {} : { claimToken: token }) };
}

function request(keys: KeyPairs, claim: DeviceClaim, opts: { requestId?: string; now?: number } = {}): { requestId: string; bytes: Uint8Array } {
  const requestId = opts.requestId ?? newRequestId();
  const bytes = buildEnrollRequest({ requestId, device: keys, fleet: fleetKeysOf(tf.bootstrap), claim, now: opts.now ?? Date.now(), ed });
  return { requestId, bytes };
}

/** Publish raw bytes as a request and collect the (verified) answers for `requestId` within `ms`. */
async function send(bytes: Uint8Array | string, requestId: string, keys: KeyPairs, ms = 1500): Promise<EnrollResponse[]> {
  const topic = enrollTopics.response(requestId);
  const answers: EnrollResponse[] = [];
  const on = (t: string, payload: Buffer): void => {
    if (t === topic) answers.push(openEnrollResponse(new Uint8Array(payload), { requestId, fleet: fleetKeysOf(tf.bootstrap), device: keys, ed }));
  };
  boot.on('message', on);
  await boot.subscribeAsync(topic, { qos: 1 });
  await boot.publishAsync(enrollTopics.request, typeof bytes === 'string' ? bytes : Buffer.from(bytes), { qos: 1 });
  await new Promise((r) => setTimeout(r, ms));
  boot.removeListener('message', on);
  await boot.unsubscribeAsync(topic);
  return answers;
}

function lastAudit(): { code: string | null; event: string; message: string } {
  const entry = tf.server!.database.auditLog(1)[0];
  assert.ok(entry, 'entry');
  return entry;
}

before(async () => {
  broker = await startMosquitto();
  tf = await createTestFleet(broker);
  await tf.startServer();
  boot = await connectAs(broker.url, tf.bootstrap.broker.username, tf.bootstrap.broker.password);
  boot.setMaxListeners(50);
});

after(async () => {
  await boot.endAsync(true);
  await tf.close();
  await broker.close();
});

test('malformed, oversized, deeply nested and unsigned requests are audited and not answered', async () => {
  const keys = generateKeyPairs();
  const id = newRequestId();
  for (const [payload, code] of [
    ['{"v":1,', 'MALFORMED'],
    [`{"v":1,"kid":"00","sig":"","body":"${'A'.repeat(20_000)}"}`, 'TOO_LARGE'],
    ['['.repeat(50) + ']'.repeat(50), 'TOO_DEEP'],
    ['{"v":1,"kid":"0011223344556677","body":"e30="}', 'UNSIGNED'],
    ['{"v":2,"kid":"x","sig":"","body":""}', 'SCHEMA'],
  ] as const) {
    assert.deepEqual(await send(payload, id, keys, 300), []);
    assert.equal(lastAudit().code, code, payload.slice(0, 40));
  }
});

test('a bad or malleated signature is refused without an answer', async () => {
  const keys = generateKeyPairs();
  const { requestId, bytes } = request(keys, claimFor('sig-1', tf.claimToken));
  const env = JSON.parse(Buffer.from(bytes).toString()) as { sig: string };
  const sig = Buffer.from(env.sig, 'base64');
  sig[3] = sig[3]! ^ 1;
  assert.deepEqual(await send(JSON.stringify({ ...env, sig: sig.toString('base64') }), requestId, keys, 300), []);
  assert.equal(lastAudit().code, 'BAD_SIGNATURE');
  // S + L: the same signature, malleated; tweetnacl alone would accept it.
  const orig = malleate(Buffer.from(env.sig, 'base64'));
  assert.deepEqual(await send(JSON.stringify({ ...env, sig: orig.toString('base64') }), requestId, keys, 300), []);
  assert.equal(lastAudit().code, 'NON_CANONICAL_SIGNATURE');
});

test('a stale request is answered with the fleet time, and a retry with that time succeeds', async () => {
  const keys = generateKeyPairs();
  const first = request(keys, claimFor('clock-1', tf.claimToken), { now: Date.parse('1970-01-02T00:00:00Z') });
  const [answer] = await send(first.bytes, first.requestId, keys);
  assert.ok(answer && !answer.ok, 'answer && !answer.ok');
  assert.equal(answer.code, 'STALE_REQUEST');
  assert.ok(Math.abs(answer.fleetTime - Date.now()) < 10_000, 'Math.abs(answer.fleetTime - Date.now()) < 10_000');
  const retry = request(keys, claimFor('clock-1', tf.claimToken), { now: answer.fleetTime });
  const [ok] = await send(retry.bytes, retry.requestId, keys);
  assert.equal(ok?.ok, true);
});

test('a wrong or missing claim token is refused with a reason', async () => {
  const keys = generateKeyPairs();
  for (const token of ['not-the-token', undefined]) {
    const r = request(keys, claimFor('token-1', token));
    const [answer] = await send(r.bytes, r.requestId, keys);
    assert.ok(answer && !answer.ok, 'answer && !answer.ok');
    assert.equal(answer.code, 'BAD_CLAIM_TOKEN');
    assert.equal(lastAudit().code, 'BAD_CLAIM_TOKEN');
  }
  assert.equal(tf.server!.database.list().some((d) => d.serial === 'token-1'), false);
});

test('allowlist: an unknown serial is refused, a listed one enrolls', async () => {
  const saved = tf.fleet.config.claim;
  tf.fleet.config.claim = { mode: 'allowlist', serials: ['listed-1'] };
  try {
    const keys = generateKeyPairs();
    const r = request(keys, claimFor('unlisted-1'));
    const [refused] = await send(r.bytes, r.requestId, keys);
    assert.ok(refused && !refused.ok, 'refused && !refused.ok');
    assert.equal(refused.code, 'UNKNOWN_SERIAL');
    const ok = request(keys, claimFor('listed-1'));
    const [granted] = await send(ok.bytes, ok.requestId, keys);
    assert.equal(granted?.ok, true);
  } finally {
    tf.fleet.config.claim = saved;
  }
});

test('approve mode: pending until an operator approves', async () => {
  const saved = tf.fleet.config.claim;
  tf.fleet.config.claim = { mode: 'approve' };
  try {
    const keys = generateKeyPairs();
    const r = request(keys, claimFor('pending-1'));
    const [pending] = await send(r.bytes, r.requestId, keys);
    assert.ok(pending && !pending.ok, 'pending && !pending.ok');
    assert.equal(pending.code, 'CLAIM_PENDING');
    const listed = tf.server!.database.list().find((d) => d.serial === 'pending-1');
    assert.equal(listed?.status, 'pending');
    assert.equal(tf.server!.database.approve('pending-1', Date.now())?.deviceId, listed.deviceId);
    const again = request(keys, claimFor('pending-1'));
    const [granted] = await send(again.bytes, again.requestId, keys);
    assert.ok(granted?.ok, 'granted?.ok');
    assert.equal(granted.grant.deviceId, listed.deviceId);
  } finally {
    tf.fleet.config.claim = saved;
  }
});

/** Enroll a device and return its grant. */
async function enroll(keys: KeyPairs, serial: string, token?: string): Promise<{ deviceId: string; password: string; clientId: string }> {
  const r = request(keys, claimFor(serial, token));
  const [answer] = await send(r.bytes, r.requestId, keys);
  assert.ok(answer?.ok, JSON.stringify(answer));
  return answer.grant;
}

/** The registry facts a takeover attempt must leave alone (presence may change meanwhile). */
function identityOf(deviceId: string): Partial<DeviceRecord> | undefined {
  const d = tf.server!.database.byId(deviceId);
  return d && { deviceId: d.deviceId, signPublicKey: d.signPublicKey, boxPublicKey: d.boxPublicKey, status: d.status, serial: d.serial, replaces: d.replaces };
}

/** Whether the broker takes this credential, under the client id its grant binds it to. */
async function canConnect(deviceId: string, password: string, clientId: string): Promise<boolean> {
  try {
    const c = await connectAs(broker.url, deviceId, password, clientId);
    await c.endAsync();
    return true;
  } catch {
    return false;
  }
}

function fleetCli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [FLEET_BUNDLE, ...args, '--dir', tf.fleet.dir], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('token mode: a new key presenting an active device\'s serial waits as a re-key request; the device keeps its record and password', async () => {
  const victim = generateKeyPairs();
  const granted = await enroll(victim, 'victim-1', tf.claimToken);
  const before = identityOf(granted.deviceId);
  const intruder = generateKeyPairs();
  const intruderId = deriveDeviceId(toBase64(intruder.signPublicKey));
  for (let i = 0; i < 2; i++) {
    const r = request(intruder, claimFor('victim-1', tf.claimToken));
    const [answer] = await send(r.bytes, r.requestId, intruder);
    assert.ok(answer && !answer.ok, 'answer && !answer.ok');
    assert.equal(answer.code, 'CLAIM_PENDING');
    assert.ok(answer.message.includes(`tsunagu-fleet approve ${intruderId}`), answer.message);
    // The requester never learns the id the serial belongs to; the operator's audit names it.
    assert.ok(!answer.message.includes(granted.deviceId), answer.message);
    assert.equal(lastAudit().event, 'rekey-requested');
    assert.ok(lastAudit().message.includes(granted.deviceId), lastAudit().message);
  }
  assert.deepEqual(identityOf(granted.deviceId), before);
  assert.deepEqual(identityOf(intruderId), { ...before, deviceId: intruderId, signPublicKey: toBase64(intruder.signPublicKey), boxPublicKey: toBase64(intruder.boxPublicKey), status: 'pending', replaces: granted.deviceId });
  assert.equal(await canConnect(granted.deviceId, granted.password, granted.clientId), true);
  // Approved by its id, the request takes over the id at its next attempt, and the old credential stops working.
  const approved = fleetCli('approve', intruderId);
  assert.equal(approved.status, 0, approved.stderr);
  assert.match(approved.stdout, new RegExp(`re-key of ${granted.deviceId}`));
  const rekeyed = await enroll(intruder, 'victim-1', tf.claimToken);
  assert.equal(rekeyed.deviceId, granted.deviceId);
  assert.equal(lastAudit().event, 'rekeyed');
  assert.equal(identityOf(intruderId), undefined);
  assert.equal(tf.server!.database.byId(granted.deviceId)?.signPublicKey, toBase64(intruder.signPublicKey));
  assert.equal(await canConnect(granted.deviceId, rekeyed.password, rekeyed.clientId), true);
  assert.notEqual(rekeyed.clientId, granted.clientId);
  assert.equal(await canConnect(granted.deviceId, granted.password, granted.clientId), false);
  assert.equal(await canConnect(granted.deviceId, granted.password, rekeyed.clientId), false);
});

test('token mode: a re-key attempt with a wrong token is refused before anything else', async () => {
  const victim = generateKeyPairs();
  const granted = await enroll(victim, 'victim-2', tf.claimToken);
  const intruder = generateKeyPairs();
  const r = request(intruder, claimFor('victim-2', 'not-the-token'));
  const [answer] = await send(r.bytes, r.requestId, intruder);
  assert.ok(answer && !answer.ok, 'answer && !answer.ok');
  assert.equal(answer.code, 'BAD_CLAIM_TOKEN');
  assert.equal(tf.server!.database.byKey(toBase64(intruder.signPublicKey)), undefined);
  assert.equal(await canConnect(granted.deviceId, granted.password, granted.clientId), true);
});

test('approve mode: a takeover attempt leaves the active device active, and approving it by serial is refused', async () => {
  const saved = tf.fleet.config.claim;
  tf.fleet.config.claim = { mode: 'approve' };
  try {
    const victim = generateKeyPairs();
    const victimId = deriveDeviceId(toBase64(victim.signPublicKey));
    const r = request(victim, claimFor('victim-3'));
    assert.equal((await send(r.bytes, r.requestId, victim))[0]?.ok, false);
    assert.equal(fleetCli('approve', victimId).status, 0);
    const granted = await enroll(victim, 'victim-3');
    const before = identityOf(victimId);
    const intruder = generateKeyPairs();
    const intruderId = deriveDeviceId(toBase64(intruder.signPublicKey));
    const ir = request(intruder, claimFor('victim-3'));
    const [answer] = await send(ir.bytes, ir.requestId, intruder);
    assert.ok(answer && !answer.ok, 'answer && !answer.ok');
    assert.equal(answer.code, 'CLAIM_PENDING');
    assert.ok(!answer.message.includes(victimId), answer.message);
    assert.equal(lastAudit().event, 'rekey-requested');
    assert.deepEqual(identityOf(victimId), before);
    const bySerial = fleetCli('approve', 'victim-3');
    assert.equal(bySerial.status, 78, bySerial.stdout);
    assert.match(bySerial.stderr, new RegExp(`CONFIG: .*${intruderId} \\(re-key of ${victimId}\\)`));
    assert.equal(tf.server!.database.byId(intruderId)?.approved, false);
    const listed = fleetCli('devices');
    assert.match(listed.stdout, new RegExp(`${intruderId}\\s+pending \\(re-key of ${victimId}\\)`));
    const again = request(intruder, claimFor('victim-3'));
    assert.equal((await send(again.bytes, again.requestId, intruder))[0]?.ok, false);
    assert.deepEqual(identityOf(victimId), before);
    assert.equal(await canConnect(victimId, granted.password, granted.clientId), true);
  } finally {
    tf.fleet.config.claim = saved;
  }
});

test('approve by a serial that several pending devices present is refused and lists their ids', async () => {
  const saved = tf.fleet.config.claim;
  tf.fleet.config.claim = { mode: 'approve' };
  try {
    const twins = [generateKeyPairs(), generateKeyPairs()];
    for (const keys of twins) {
      const r = request(keys, claimFor('twin-1'));
      assert.equal((await send(r.bytes, r.requestId, keys))[0]?.ok, false);
    }
    const ids = twins.map((k) => deriveDeviceId(toBase64(k.signPublicKey)));
    const refused = fleetCli('approve', 'twin-1');
    assert.equal(refused.status, 78);
    for (const id of ids) assert.ok(refused.stderr.includes(id), refused.stderr);
    assert.equal(tf.server!.database.list().filter((d) => d.serial === 'twin-1' && d.approved).length, 0);
    assert.equal(fleetCli('approve', ids[0]!).status, 0);
    const granted = await enroll(twins[0]!, 'twin-1');
    assert.equal(granted.deviceId, ids[0]);
  } finally {
    tf.fleet.config.claim = saved;
  }
});

test('a request delivered twice creates one device and gets the same answer twice', async () => {
  const keys = generateKeyPairs();
  const r = request(keys, claimFor('twice-1', tf.claimToken));
  const topic = enrollTopics.response(r.requestId);
  const raw: string[] = [];
  const on = (t: string, p: Buffer): void => { if (t === topic) raw.push(p.toString()); };
  boot.on('message', on);
  await boot.subscribeAsync(topic, { qos: 1 });
  await boot.publishAsync(enrollTopics.request, Buffer.from(r.bytes), { qos: 1 });
  await boot.publishAsync(enrollTopics.request, Buffer.from(r.bytes), { qos: 1 });
  await new Promise((res) => setTimeout(res, 1500));
  boot.removeListener('message', on);
  assert.equal(raw.length, 2);
  assert.equal(raw[0], raw[1]);
  assert.equal(tf.server!.database.list().filter((d) => d.signPublicKey === toBase64(keys.signPublicKey)).length, 1);
});

test('two service instances on one broker share the requests and never enroll a device twice', async () => {
  await tf.startServer();
  const devices = Array.from({ length: 12 }, (_, i) => ({ keys: generateKeyPairs(), serial: `pair-${i}` }));
  const results = await Promise.all(devices.map(async (d) => {
    const r = request(d.keys, claimFor(d.serial, tf.claimToken));
    return send(r.bytes, r.requestId, d.keys, 3000);
  }));
  for (const answers of results) {
    assert.equal(answers.length, 1);
    assert.equal(answers[0]?.ok, true);
  }
  const ids = results.map((a) => (a[0]?.ok ? a[0].grant.deviceId : ''));
  assert.equal(new Set(ids).size, devices.length);
  for (const d of devices) {
    assert.equal(tf.server!.database.list().filter((x) => x.serial === d.serial).length, 1);
  }
  // After everything above, a good request still enrolls: the service never fell over.
  const keys = generateKeyPairs();
  const last = request(keys, claimFor('final-1', tf.claimToken));
  const [answer] = await send(last.bytes, last.requestId, keys);
  assert.equal(answer?.ok, true);
});
