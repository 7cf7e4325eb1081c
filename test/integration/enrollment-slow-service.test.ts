import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import nacl from 'tweetnacl';
import { sleep } from '../../common/backoff.js';
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
 * A service slower than the device's patience (a fleet powered up together
 * queues at one service): the device sends its unanswered request again
 * with the same request id (docs/protocol.md §6.6), takes the answer
 * whenever it comes, and the service grants once.
 */
const ed = nativeEd25519();

function keysFrom(byte: number): KeyPairs {
  const sign = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(byte));
  const box = nacl.box.keyPair.fromSecretKey(new Uint8Array(32).fill(byte + 1));
  return { signPublicKey: sign.publicKey, signSecretKey: sign.secretKey, boxPublicKey: box.publicKey, boxSecretKey: box.secretKey };
}

const fleetKeys = keysFrom(0x30);
const device = keysFrom(0x40);
const GRANT_TAKES_MS = 3_000;
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
  const accounts = dynsecAccounts(dynsec);
  service = new EnrollmentService({
    client: fleetClient, database, ed, logger: silentLogger(),
    // The broker's account creation is where a loaded service spends its time.
    accounts: { grant: async (deviceId, password, clientId) => { await sleep(GRANT_TAKES_MS); await accounts.grant(deviceId, password, clientId); } },
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

test('an answer slower than the device timeout still enrolls it, with one grant for one request', async () => {
  const bootstrap: BootstrapFile = {
    v: 1, fleetId: 'acme',
    broker: { url: broker.url, username: 'bootstrap-acme', password: 'bootstrap-password-0123456789', protocolVersion: 5 },
    fleetKeys: { signPublicKey: toBase64(fleetKeys.signPublicKey), boxPublicKey: toBase64(fleetKeys.boxPublicKey) },
    claim: { token: 'T0K3N' },
  };
  // What the device publishes, as any holder of the fleet account sees it on the request topic.
  const observer = await mqtt.connectAsync(broker.url, { username: 'fleet', password: 'fleet-password-0123456789', reconnectPeriod: 0 });
  const sent: { id: string; iat: number }[] = [];
  observer.on('message', (_topic, payload) => {
    const body = (JSON.parse(payload.toString()) as { body: string }).body;
    sent.push(JSON.parse(Buffer.from(body, 'base64').toString()) as { id: string; iat: number });
  });
  await observer.subscribeAsync('tsunagu/enroll/request', { qos: 1 });
  const controller = new AbortController();
  const deadline = setTimeout(() => controller.abort(new Error('no grant in time')), 30_000);
  const grant = await enroll({
    bootstrap, keys: device, ed, logger: silentLogger(), signal: controller.signal,
    claim: { serial: 'SN-SLOW', model: 'board', arch: 'arm64', macs: [], hostname: 'edge', claimToken: 'T0K3N' },
    backoff: { baseMs: 100, capMs: 200 },
    responseTimeoutMs: 1_000,
  });
  clearTimeout(deadline);
  await service.idle();
  assert.equal(grant.deviceId, deriveDeviceId(toBase64(device.signPublicKey)));
  // Repeats of the same request are answered from the service's records: a
  // device that sent new requests instead would show re-enrollments here.
  assert.deepEqual(database.auditLog().map((e) => e.event), ['enrolled']);
  await observer.endAsync();
  // Unanswered within its timeout, the request went out again as it was: same id, same issue time.
  assert.ok(sent.length >= 2, `the device sent its request ${sent.length} time(s)`);
  assert.deepEqual(new Set(sent.map((p) => `${p.id}@${p.iat}`)).size, 1, 'a repeat carried a new request id or time');
  const own = await mqtt.connectAsync(broker.url, { username: grant.username, password: grant.password, clientId: grant.clientId, reconnectPeriod: 0 });
  await own.endAsync();
});
