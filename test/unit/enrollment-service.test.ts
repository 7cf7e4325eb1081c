import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { silentLogger } from '../../common/logger.js';
import { toBase64, utf8 } from '../../protocol/bytes.js';
import { isSecretClientId } from '../../protocol/client-id.js';
import { nativeEd25519 } from '../../protocol/ed25519.js';
import {
  buildEnrollRequest, openEnrollResponse, type DeviceClaim, type EnrollGrant, type EnrollResponse, type FleetPublicKeys,
} from '../../protocol/enrollment.js';
import type { KeyPairs } from '../../protocol/keys.js';
import { hashClaimToken, type ClaimPolicy } from '../../provisioning/claim-policy.js';
import { EnrollmentService, type DeviceAccounts } from '../../provisioning/enrollment-service.js';
import { deriveDeviceId, FleetDatabase } from '../../provisioning/fleet-database.js';
import { keysFrom } from '../support/test-keys.js';

/**
 * The enrollment service's decisions without a broker: a stand-in MQTT
 * client records what the service publishes, the fleet database is SQLite in memory.
 */
const ed = nativeEd25519();

const fleetKeys = keysFrom(0x10);
const fleet: FleetPublicKeys = { fleetId: 'acme', signPublicKey: fleetKeys.signPublicKey, boxPublicKey: fleetKeys.boxPublicKey };
const claim: DeviceClaim = { serial: 'SN-1', model: 'board', arch: 'arm64', macs: [], hostname: 'edge-1', claimToken: 'T0K3N' };

class FakeClient extends EventEmitter {
  readonly published: { topic: string; payload: Buffer }[] = [];
  subscribeAsync(): Promise<void> {
    return Promise.resolve();
  }
  publishAsync(topic: string, payload: Buffer): Promise<void> {
    this.published.push({ topic, payload });
    return Promise.resolve();
  }
}

function setup(policy: ClaimPolicy) {
  const client = new FakeClient();
  const database = new FleetDatabase(':memory:');
  const grants: { deviceId: string; password: string; clientId: string }[] = [];
  const accounts: DeviceAccounts = {
    grant: (deviceId, password, clientId) => {
      grants.push({ deviceId, password, clientId });
      return Promise.resolve();
    },
  };
  let clock = 1_750_000_000_000;
  const service = new EnrollmentService({
    client: client as unknown as MqttClient, accounts, database, ed, logger: silentLogger(),
    fleet: { fleetId: 'acme', signPublicKey: fleetKeys.signPublicKey, signSecretKey: fleetKeys.signSecretKey, boxSecretKey: fleetKeys.boxSecretKey },
    policy: () => policy,
    now: () => clock,
  });
  return {
    client, database, grants, service,
    advance: (ms: number) => { clock += ms; },
    now: () => clock,
    /**
     * Enroll `original` (granted), then have `fresh`, another key with the same serial, ask:
     * a re-key request, pending. Returns the first grant, the original's row before the request
     * and the request's device id.
     */
    async rekeyRequested(original: KeyPairs, fresh: KeyPairs): Promise<{ first: EnrollGrant; before: ReturnType<FleetDatabase['byId']>; requestId: string }> {
      const first = await this.granted(original);
      const before = database.byId(first.deviceId);
      assert.equal((await this.ask(fresh, rid(2))).answer?.ok, false);
      return { first, before, requestId: deriveDeviceId(toBase64(fresh.signPublicKey)) };
    },
    /** Enroll `device` with a first request (`rid(1)`), which must be granted. */
    async granted(device: KeyPairs): Promise<EnrollGrant> {
      const answer = (await this.ask(device, rid(1))).answer;
      assert.ok(answer?.ok, 'answer?.ok');
      return answer.grant;
    },
    /** Send a request as `device` and return the answer it receives, if any. */
    async ask(device: KeyPairs, requestId: string, issuedAt = clock, deviceClaim = claim): Promise<{ answer: EnrollResponse | undefined; bytes: Buffer | undefined }> {
      const before = client.published.length;
      await service.handle(buildEnrollRequest({ requestId, device, fleet, claim: deviceClaim, now: issuedAt, ed }));
      const sent = client.published.slice(before);
      assert.ok(sent.length <= 1, 'sent.length <= 1');
      const reply = sent[0];
      if (reply === undefined) return { answer: undefined, bytes: undefined };
      assert.equal(reply.topic, `tsunagu/enroll/response/${requestId}`);
      return { answer: openEnrollResponse(new Uint8Array(reply.payload), { requestId, fleet, device, ed }), bytes: reply.payload };
    },
  };
}

const tokenPolicy: ClaimPolicy = { mode: 'token', tokenSha256: hashClaimToken('T0K3N') };
const rid = (n: number): string => n.toString(16).padStart(32, '0');

test('a device is granted an id derived from its key and a broker account bound to a secret client id', async () => {
  const s = setup(tokenPolicy);
  const device = keysFrom(0x20);
  const { answer, bytes } = await s.ask(device, rid(1));
  assert.ok(answer?.ok, 'answer?.ok');
  const id = deriveDeviceId(toBase64(device.signPublicKey));
  assert.deepEqual({ ...answer.grant, password: '', clientId: '' }, { deviceId: id, username: id, clientId: '', password: '' });
  // The client id is not the public device id, and travels only inside the sealed grant.
  assert.ok(isSecretClientId(answer.grant.clientId), 'isSecretClientId(answer.grant.clientId)');
  assert.ok(!bytes!.toString('utf8').includes(answer.grant.clientId), "!bytes!.toString('utf8').includes(answer.grant.clientId)");
  assert.ok(!JSON.stringify(s.database.auditLog(10)).includes(answer.grant.clientId), '!JSON.stringify(s.database.auditLog(10)).includes(answer.grant.clientId)');
  assert.deepEqual(s.grants, [{ deviceId: id, password: answer.grant.password, clientId: answer.grant.clientId }]);
  assert.equal(s.database.byId(id)?.status, 'active');
});

test('the same request id gets the same response bytes, without a second account change', async () => {
  const s = setup(tokenPolicy);
  const device = keysFrom(0x20);
  const first = await s.ask(device, rid(1));
  s.advance(5_000);
  const again = await s.ask(device, rid(1));
  assert.deepEqual(again.bytes, first.bytes);
  assert.equal(s.grants.length, 1);
});

test('the same key keeps its device id; a retry within 60 s gets the same credential, a later one a new one', async () => {
  const s = setup(tokenPolicy);
  const device = keysFrom(0x20);
  const first = (await s.ask(device, rid(1))).answer;
  s.advance(30_000);
  const soon = (await s.ask(device, rid(2))).answer;
  s.advance(61_000);
  const later = (await s.ask(device, rid(3))).answer;
  assert.ok(first?.ok && soon?.ok && later?.ok, 'first?.ok && soon?.ok && later?.ok');
  assert.equal(soon.grant.deviceId, first.grant.deviceId);
  assert.equal(later.grant.deviceId, first.grant.deviceId);
  assert.equal(soon.grant.password, first.grant.password);
  assert.equal(soon.grant.clientId, first.grant.clientId);
  assert.notEqual(later.grant.password, first.grant.password);
  // A re-enrollment gets a fresh client id: whoever learnt the old one learns nothing.
  assert.notEqual(later.grant.clientId, first.grant.clientId);
  assert.equal(s.grants.length, 2);
});

test('STALE_REQUEST: a request outside ±5 min is answered with the fleet time; the corrected retry succeeds', async () => {
  const s = setup(tokenPolicy);
  const device = keysFrom(0x20);
  const { answer } = await s.ask(device, rid(1), 0); // a board that booted in 1970
  assert.ok(answer !== undefined && !answer.ok, 'answer !== undefined && !answer.ok');
  assert.equal(answer.code, 'STALE_REQUEST');
  assert.equal(answer.fleetTime, s.now());
  assert.ok((await s.ask(device, rid(2), answer.fleetTime)).answer?.ok, '(await s.ask(device, rid(2), answer.fleetTime)).answer?.ok');
});

test('refusals are answered with their code: wrong token, unknown serial', async () => {
  const s = setup(tokenPolicy);
  const { answer } = await s.ask(keysFrom(0x20), rid(1), undefined, { ...claim, claimToken: 'wrong' });
  assert.equal(answer !== undefined && !answer.ok && answer.code, 'BAD_CLAIM_TOKEN');
  const a = setup({ mode: 'allowlist', serials: ['SN-2'] });
  const refused = (await a.ask(keysFrom(0x20), rid(1))).answer;
  assert.equal(refused !== undefined && !refused.ok && refused.code, 'UNKNOWN_SERIAL');
  assert.equal(a.grants.length + s.grants.length, 0);
});

test('approve mode: CLAIM_PENDING until an operator approves, then a grant', async () => {
  const s = setup({ mode: 'approve' });
  const device = keysFrom(0x20);
  const pending = (await s.ask(device, rid(1))).answer;
  assert.equal(pending !== undefined && !pending.ok && pending.code, 'CLAIM_PENDING');
  const id = deriveDeviceId(toBase64(device.signPublicKey));
  assert.equal(s.database.byId(id)?.status, 'pending');
  assert.equal(s.database.approve('SN-1', s.now())?.deviceId, id);
  const granted = (await s.ask(device, rid(2))).answer;
  assert.ok(granted?.ok, 'granted?.ok');
  assert.equal(granted.grant.deviceId, id);
});

test('a request whose signature does not verify is not answered', async () => {
  const s = setup(tokenPolicy);
  const device = keysFrom(0x20);
  const bytes = buildEnrollRequest({ requestId: rid(1), device, fleet, claim, now: s.now(), ed });
  const text = Buffer.from(bytes).toString('utf8');
  const tampered = text.replace(/"sig":"(.)/, (_m, c: string) => `"sig":"${c === 'A' ? 'B' : 'A'}`);
  await s.service.handle(utf8(tampered));
  await s.service.handle(utf8('not json'));
  assert.equal(s.client.published.length, 0);
  assert.equal(s.database.auditLog().filter((e) => e.event === 'refused').length, 2);
});

test('a request for another fleet, validly signed, is answered with WRONG_DEVICE', async () => {
  const s = setup(tokenPolicy);
  const device = keysFrom(0x20);
  await s.service.handle(buildEnrollRequest({ requestId: rid(1), device, fleet: { ...fleet, fleetId: 'other' }, claim, now: s.now(), ed }));
  assert.equal(s.client.published.length, 1);
  const answer = openEnrollResponse(new Uint8Array(s.client.published[0]!.payload), { requestId: rid(1), fleet, device, ed });
  assert.equal(!answer.ok && answer.code, 'WRONG_DEVICE');
});

test('a new key with the serial of an active device becomes a re-key request; the device is untouched', async () => {
  const s = setup(tokenPolicy);
  const victimId = (await s.granted(keysFrom(0x20))).deviceId;
  const before = s.database.byId(victimId);
  s.advance(120_000);
  const intruder = keysFrom(0x40);
  const answer = (await s.ask(intruder, rid(2))).answer;
  assert.ok(answer !== undefined && !answer.ok, 'answer !== undefined && !answer.ok');
  assert.equal(answer.code, 'CLAIM_PENDING');
  const requestId = deriveDeviceId(toBase64(intruder.signPublicKey));
  assert.match(answer.message, new RegExp(`re-key.*tsunagu-fleet approve ${requestId}`));
  assert.deepEqual(s.database.byId(victimId), before);
  assert.deepEqual(s.grants.map((g) => g.deviceId), [victimId]);
  const request = s.database.byId(requestId);
  assert.equal(request?.status, 'pending');
  assert.equal(request.replaces, victimId);
  assert.equal(s.database.auditLog(1)[0]?.event, 'rekey-requested');
  // Asking again changes nothing either.
  assert.equal((await s.ask(intruder, rid(3))).answer?.ok, false);
  assert.deepEqual(s.database.byId(victimId), before);
  assert.equal(s.grants.length, 1);
});

test('the claim policy applies to a re-key request first: a wrong token is refused and leaves no row', async () => {
  const s = setup(tokenPolicy);
  assert.ok((await s.ask(keysFrom(0x20), rid(1))).answer?.ok, '(await s.ask(keysFrom(0x20), rid(1))).answer?.ok');
  const intruder = keysFrom(0x40);
  const { answer } = await s.ask(intruder, rid(2), undefined, { ...claim, claimToken: 'wrong' });
  assert.equal(answer !== undefined && !answer.ok && answer.code, 'BAD_CLAIM_TOKEN');
  assert.equal(s.database.byKey(toBase64(intruder.signPublicKey)), undefined);
});

test('an approved re-key moves the new keys onto the old id, resets its password, and removes the request', async () => {
  const s = setup(tokenPolicy);
  const [old, fresh] = [keysFrom(0x20), keysFrom(0x40)];
  const { first, requestId } = await s.rekeyRequested(old, fresh);
  const oldId = first.deviceId;
  assert.equal(s.database.approve(requestId, s.now())?.replaces, oldId);
  const granted = (await s.ask(fresh, rid(3))).answer;
  assert.ok(granted?.ok, 'granted?.ok');
  assert.equal(granted.grant.deviceId, oldId);
  assert.notEqual(granted.grant.password, first.password);
  assert.notEqual(granted.grant.clientId, first.clientId);
  assert.deepEqual(s.grants.at(-1), { deviceId: oldId, password: granted.grant.password, clientId: granted.grant.clientId });
  assert.equal(s.database.byId(requestId), undefined);
  assert.equal(s.database.byKey(toBase64(fresh.signPublicKey))?.deviceId, oldId);
  assert.equal(s.database.byKey(toBase64(old.signPublicKey)), undefined);
  assert.equal(s.database.byId(oldId)?.status, 'active');
  assert.equal(s.database.auditLog(1)[0]?.event, 'rekeyed');
  // A quick retry is now an ordinary re-enrollment with the same credential.
  const retry = (await s.ask(fresh, rid(4))).answer;
  assert.ok(retry?.ok, 'retry?.ok');
  assert.equal(retry.grant.password, granted.grant.password);
  assert.equal(retry.grant.clientId, granted.grant.clientId);
});

test('approve mode: a re-key request leaves the active device active; approving by serial is refused', async () => {
  const s = setup({ mode: 'approve' });
  const victim = keysFrom(0x20);
  await s.ask(victim, rid(1));
  const victimId = deriveDeviceId(toBase64(victim.signPublicKey));
  assert.equal(s.database.approve('SN-1', s.now())?.deviceId, victimId);
  assert.ok((await s.ask(victim, rid(2))).answer?.ok, '(await s.ask(victim, rid(2))).answer?.ok');
  const intruder = keysFrom(0x40);
  const answer = (await s.ask(intruder, rid(3))).answer;
  assert.equal(answer !== undefined && !answer.ok && answer.code, 'CLAIM_PENDING');
  assert.equal(s.database.byId(victimId)?.status, 'active');
  assert.equal(s.database.byId(victimId)?.signPublicKey, toBase64(victim.signPublicKey));
  assert.throws(() => s.database.approve('SN-1', s.now()), (e: Error & { code?: string }) => e.code === 'CONFIG' && /re-key/.test(e.message));
  assert.equal(s.database.byKey(toBase64(intruder.signPublicKey))?.approved, false);
});

test('approving by a serial that several pending devices present is refused, naming them', async () => {
  const s = setup({ mode: 'approve' });
  const a = keysFrom(0x20);
  const b = keysFrom(0x40);
  await s.ask(a, rid(1));
  await s.ask(b, rid(2));
  const ids = [a, b].map((k) => deriveDeviceId(toBase64(k.signPublicKey)));
  assert.throws(() => s.database.approve('SN-1', s.now()), (e: Error & { code?: string }) => e.code === 'CONFIG' && ids.every((id) => e.message.includes(id)));
  assert.equal(s.database.list().some((d) => d.approved), false);
  assert.equal(s.database.approve(ids[1]!, s.now())?.deviceId, ids[1]);
});

test('an approval given to a new device does not carry over once the request turns into a re-key', async () => {
  const s = setup({ mode: 'approve' });
  const late = keysFrom(0x40);
  await s.ask(late, rid(1));
  const lateId = deriveDeviceId(toBase64(late.signPublicKey));
  assert.equal(s.database.approve(lateId, s.now())?.deviceId, lateId);
  // Meanwhile another device with the same serial became active.
  const other = keysFrom(0x20);
  s.database.upsertDevice({
    deviceId: deriveDeviceId(toBase64(other.signPublicKey)), signPublicKey: toBase64(other.signPublicKey), boxPublicKey: toBase64(other.boxPublicKey),
    serial: 'SN-1', model: 'board', arch: 'arm64', macs: [], hostname: 'edge-0', status: 'active', enrolledAt: s.now(), now: s.now(),
  });
  const answer = (await s.ask(late, rid(2))).answer;
  assert.equal(answer !== undefined && !answer.ok && answer.code, 'CLAIM_PENDING');
  const row = s.database.byId(lateId);
  assert.equal(row?.approved, false);
  assert.equal(row.replaces, deriveDeviceId(toBase64(other.signPublicKey)));
  assert.equal(s.grants.length, 0);
});

test('a revoked key is refused with DEVICE_REVOKED, gets no grant, and stays revoked', async () => {
  const s = setup(tokenPolicy);
  const device = keysFrom(0x20);
  const id = (await s.granted(device)).deviceId;
  assert.equal(s.database.revoke(id, s.now())?.status, 'active');
  s.advance(120_000);
  const answer = (await s.ask(device, rid(2))).answer;
  assert.equal(answer !== undefined && !answer.ok && answer.code, 'DEVICE_REVOKED');
  assert.equal(s.grants.length, 1);
  assert.equal(s.database.byId(id)?.status, 'revoked');
  assert.equal(s.database.recentGrant(id, s.now(), 10 ** 9), undefined);
  assert.equal(s.database.auditLog(1)[0]?.code, 'DEVICE_REVOKED');
  // A grant decided just before the revocation cannot undo it.
  s.database.upsertDevice({
    deviceId: id, signPublicKey: toBase64(device.signPublicKey), boxPublicKey: toBase64(device.boxPublicKey),
    serial: 'SN-1', model: 'board', arch: 'arm64', macs: [], hostname: 'edge-1', status: 'active', enrolledAt: s.now(), now: s.now(),
  });
  assert.equal(s.database.byId(id)?.status, 'revoked');
});

test('approve --as-new: a re-key request joins under its own id, and the device whose serial it shares is untouched', async () => {
  const s = setup(tokenPolicy);
  const original = keysFrom(0x20);
  const clone = keysFrom(0x40);
  const { first, before, requestId: cloneId } = await s.rekeyRequested(original, clone);
  const originalId = first.deviceId;
  const approved = s.database.approve(cloneId, s.now(), { asNew: true });
  assert.equal(approved?.asNew, true);
  assert.equal(approved.replaces, originalId);
  const granted = (await s.ask(clone, rid(3))).answer;
  assert.ok(granted?.ok, 'granted?.ok');
  assert.equal(granted.grant.deviceId, cloneId);
  assert.deepEqual(s.grants.map((g) => g.deviceId), [originalId, cloneId]);
  assert.deepEqual(s.database.byId(originalId), before);
  const clonedRow = s.database.byId(cloneId);
  assert.equal(clonedRow?.status, 'active');
  assert.equal(clonedRow.replaces, null);
  assert.equal(s.database.auditLog(1)[0]?.event, 'enrolled-as-new');
  // Both keep working: each re-enrolls as itself.
  assert.equal((await s.ask(original, rid(4))).answer?.ok && s.grants.length, 2);
  const again = (await s.ask(clone, rid(5))).answer;
  assert.equal(again?.ok && again.grant.deviceId, cloneId);
});

test('--as-new is for re-key requests named by id: a plain pending device or a serial is refused', async () => {
  const s = setup({ mode: 'approve' });
  const device = keysFrom(0x20);
  await s.ask(device, rid(1));
  const id = deriveDeviceId(toBase64(device.signPublicKey));
  assert.throws(() => s.database.approve(id, s.now(), { asNew: true }), (e: Error & { code?: string }) => e.code === 'CONFIG' && /--as-new/.test(e.message));
  assert.throws(() => s.database.approve('SN-1', s.now(), { asNew: true }), (e: Error & { code?: string }) => e.code === 'CONFIG');
  assert.equal(s.database.byId(id)?.approved, false);
});

test('a re-key request onto a revoked device is refused; only --as-new admits the key, under its own id', async () => {
  const s = setup(tokenPolicy);
  const fresh = keysFrom(0x40);
  const { first, requestId } = await s.rekeyRequested(keysFrom(0x20), fresh);
  const oldId = first.deviceId;
  s.database.revoke(oldId, s.now());
  // Not turned into a plain new device by the claim token either.
  const refused = (await s.ask(fresh, rid(3))).answer;
  assert.equal(refused !== undefined && !refused.ok && refused.code, 'DEVICE_REVOKED');
  assert.ok(refused !== undefined && !refused.ok && refused.message.includes(`tsunagu-fleet approve --as-new ${requestId}`), 'refused !== undefined && !refused.ok && refused.message.includes(`tsunagu-fleet approve --as-new ...');
  assert.throws(() => s.database.approve(requestId, s.now()), (e: Error & { code?: string }) => e.code === 'DEVICE_REVOKED');
  assert.equal(s.database.approve(requestId, s.now(), { asNew: true })?.asNew, true);
  const granted = (await s.ask(fresh, rid(4))).answer;
  assert.ok(granted?.ok, 'granted?.ok');
  assert.equal(granted.grant.deviceId, requestId);
  assert.equal(s.database.byId(oldId)?.status, 'revoked');
});
