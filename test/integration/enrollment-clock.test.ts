import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import nacl from 'tweetnacl';
import { silentLogger } from '../../common/logger.js';
import { enroll } from '../../agent/enrollment/enroller.js';
import type { BootstrapFile } from '../../protocol/bootstrap.js';
import { toBase64 } from '../../protocol/bytes.js';
import { nativeEd25519 } from '../../protocol/ed25519.js';
import type { KeyPairs } from '../../protocol/keys.js';
import { BOOTSTRAP_ROLE, bootstrapRole, FLEET_ROLE, fleetRole } from '../../provisioning/broker-roles.js';
import { hashClaimToken } from '../../provisioning/claim-policy.js';
import { DynsecClient } from '../../provisioning/dynsec-client.js';
import { dynsecAccounts, EnrollmentService } from '../../provisioning/enrollment-service.js';
import { deriveDeviceId, FleetDatabase } from '../../provisioning/fleet-database.js';
import { startMosquitto, type TestBroker } from '../support/mosquitto.js';

/**
 * Enrollment end to end against Mosquitto with the production roles: a
 * device whose clock says 1970 is answered STALE_REQUEST, corrects its clock
 * with the fleet time, and is granted a credential the broker accepts.
 */
const ed = nativeEd25519();

function keysFrom(byte: number): KeyPairs {
  const sign = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(byte));
  const box = nacl.box.keyPair.fromSecretKey(new Uint8Array(32).fill(byte + 1));
  return { signPublicKey: sign.publicKey, signSecretKey: sign.secretKey, boxPublicKey: box.publicKey, boxSecretKey: box.secretKey };
}

const fleetKeys = keysFrom(0x10);
const device = keysFrom(0x20);
let broker: TestBroker;
let fleetClient: MqttClient;
let dynsec: DynsecClient;
let database: FleetDatabase;
let service: EnrollmentService;

before(async () => {
  broker = await startMosquitto();
  const admin = await mqtt.connectAsync(broker.url, { username: broker.adminUser, password: broker.adminPassword, reconnectPeriod: 0 });
  const adminDynsec = new DynsecClient(admin);
  await adminDynsec.putRole(fleetRole());
  await adminDynsec.putClient({ username: 'fleet', password: 'fleet-password-0123456789', roles: [FLEET_ROLE] });
  adminDynsec.close();
  await admin.endAsync();

  fleetClient = await mqtt.connectAsync(broker.url, { username: 'fleet', password: 'fleet-password-0123456789', reconnectPeriod: 0 });
  dynsec = new DynsecClient(fleetClient);
  await dynsec.setDefaultAccess();
  await dynsec.putRole(bootstrapRole());
  await dynsec.putClient({ username: 'bootstrap-acme', password: 'bootstrap-password-0123456789', roles: [BOOTSTRAP_ROLE] });
  database = new FleetDatabase(':memory:');
  service = new EnrollmentService({
    client: fleetClient, accounts: dynsecAccounts(dynsec), database, ed, logger: silentLogger(),
    fleet: { fleetId: 'acme', signPublicKey: fleetKeys.signPublicKey, signSecretKey: fleetKeys.signSecretKey, boxSecretKey: fleetKeys.boxSecretKey },
    policy: () => ({ mode: 'token', tokenSha256: hashClaimToken('T0K3N') }),
  });
  await service.start();
});

after(async () => {
  await service.stop();
  dynsec.close();
  await fleetClient.endAsync();
  database.close();
  await broker.close();
});

test('a device booted in 1970 corrects its clock from STALE_REQUEST and enrolls', async () => {
  const bootstrap: BootstrapFile = {
    v: 1, fleetId: 'acme',
    broker: { url: broker.url, username: 'bootstrap-acme', password: 'bootstrap-password-0123456789', protocolVersion: 5 },
    fleetKeys: { signPublicKey: toBase64(fleetKeys.signPublicKey), boxPublicKey: toBase64(fleetKeys.boxPublicKey) },
    claim: { token: 'T0K3N' },
  };
  const controller = new AbortController();
  const deadline = setTimeout(() => controller.abort(new Error('no grant in time')), 30_000);
  const grant = await enroll({
    bootstrap, keys: device, ed, logger: silentLogger(), signal: controller.signal,
    claim: { serial: 'SN-1970', model: 'board', arch: 'arm64', macs: [], hostname: 'edge', claimToken: 'T0K3N' },
    clock: () => 86_400_000, // 2 January 1970
    backoff: { baseMs: 100, capMs: 200 },
    responseTimeoutMs: 5_000,
  });
  clearTimeout(deadline);
  await service.idle();

  assert.equal(grant.deviceId, deriveDeviceId(toBase64(device.signPublicKey)));
  const events = database.auditLog().reverse().map((e) => `${e.event}${e.code === null ? '' : `:${e.code}`}`);
  assert.deepEqual(events, ['refused:STALE_REQUEST', 'enrolled']);

  // The broker accepts the granted credential, under the granted client id only.
  const own = await mqtt.connectAsync(broker.url, { username: grant.username, password: grant.password, clientId: grant.clientId, reconnectPeriod: 0 });
  await own.endAsync();
  await assert.rejects(mqtt.connectAsync(broker.url, { username: grant.username, password: grant.password, clientId: 'someone-else', reconnectPeriod: 0 }));
});
