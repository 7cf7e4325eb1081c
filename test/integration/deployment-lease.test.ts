import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import nacl from 'tweetnacl';
import { toBase64 } from '../../protocol/bytes.js';
import { deviceTopic } from '../../protocol/topics.js';
import { connectFleetClient } from '../../provisioning/broker-setup.js';
import { DEPLOYMENTS_CHANGED_TOPIC } from '../../provisioning/deployments/deployment-reconciler.js';
import { DeploymentStore } from '../../provisioning/deployments/deployment-store.js';
import { deriveDeviceId, FleetDatabase } from '../../provisioning/fleet-database.js';
import type { RunningEnrollmentServer } from '../../provisioning/enrollment-server.js';
import { createTestFleet, type TestFleet } from '../support/fleet.js';
import { startMosquitto, type TestBroker } from '../support/mosquitto.js';
import { waitFor } from '../support/wait-for.js';

// Two `serve` instances on one fleet (one Mosquitto, one fleet database):
// only the holder of the lease publishes, each change is published once, and
// the other takes over as soon as the holder stops.
let broker: TestBroker;
let tf: TestFleet;
let servers: RunningEnrollmentServer[];
let database: FleetDatabase;
let store: DeploymentStore;
let client: MqttClient;
const desired: Buffer[] = [];
const sign = nacl.sign.keyPair();
const deviceId = deriveDeviceId(toBase64(sign.publicKey));

const revision = (image: string) => ({ compose: { services: { web: { image } } }, sealedSecrets: null, settings: null });

async function changed(): Promise<void> {
  await client.publishAsync(DEPLOYMENTS_CHANGED_TOPIC, Buffer.from('{}'), { qos: 1 });
}

function audit(event: string): string[] {
  return database.auditLog(1000).filter((e) => e.event === event).map((e) => e.message);
}

before(async () => {
  broker = await startMosquitto();
  tf = await createTestFleet(broker);
  servers = [await tf.startServer(), await tf.startServer()];
  database = new FleetDatabase(tf.fleet.databasePath);
  store = new DeploymentStore(database);
  // A device as the enrollment service records it, with the labels its inventory gave.
  database.upsertDevice({
    deviceId, signPublicKey: toBase64(sign.publicKey), boxPublicKey: toBase64(nacl.box.keyPair().publicKey), serial: 'lease-1',
    model: 'test', arch: 'x64', macs: [], hostname: 'lease-1', status: 'active', enrolledAt: Date.now(), now: Date.now(),
  });
  database.setLabels(deviceId, { site: 'lease' });
  client = await connectFleetClient(tf.fleet.config, 'lease-test');
  client.on('message', (topic, payload) => { if (topic === deviceTopic(deviceId, 'desired') && payload.length > 0) desired.push(payload); });
  await client.subscribeAsync(deviceTopic(deviceId, 'desired'), { qos: 1 });
});

after(async () => {
  await client?.endAsync();
  database?.close();
  await tf?.close();
  await broker?.close();
});

test('one of two serve instances drives; each change is published once; the other takes over when it stops', async () => {
  await waitFor('one instance driving', () => servers.filter((s) => s.reconciler.driving).length === 1);
  assert.equal(servers.filter((s) => s.reconciler.driving).length, 1);

  store.create({ name: 'web', selector: { site: 'lease' }, priority: 0, strategy: { waves: [{ percent: 100 }], bakeMs: 0, maxFailures: { count: 0 }, onHalt: 'revert', deadlineMs: 60_000 } }, revision('r/web:1'), Date.now());
  await changed();
  await waitFor('the first desired state, recorded', () => desired.length >= 1 && audit('desired-published').length >= 1);
  store.update('web', revision('r/web:2'), Date.now());
  await changed();
  await waitFor('the second desired state, recorded', () => desired.length >= 2 && audit('desired-published').length >= 2);
  assert.equal(audit('desired-published').length, 2, 'each change published once, by one instance');
  assert.equal(desired.length, 2);

  const holder = servers.find((s) => s.reconciler.driving)!;
  const other = servers.find((s) => s !== holder)!;
  await holder.stop();
  servers = [other];
  await waitFor('the other instance driving', () => other.reconciler.driving);
  store.update('web', revision('r/web:3'), Date.now());
  await changed();
  await waitFor('the third desired state, recorded', () => desired.length >= 3 && audit('desired-published').length >= 3);
  assert.equal(audit('desired-published').length, 3);
  assert.equal(desired.length, 3);
  const taken = audit('lease-taken');
  assert.equal(taken.length, 2);
  assert.match(taken[0]!, /epoch 2/);
});
