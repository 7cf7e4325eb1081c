import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import mqtt from 'mqtt';
import { sleep } from '../../common/backoff.js';
import { toBase64 } from '../../protocol/bytes.js';
import { deriveDeviceId } from '../../provisioning/fleet-database.js';
import { startEnrollmentWorld, type EnrollmentWorld } from '../support/enrollment-world.js';
import { keysFrom } from '../support/test-keys.js';

/**
 * A service slower than the device's patience (a fleet powered up together
 * queues at one service): the device sends its unanswered request again
 * with the same request id (docs/protocol.md §6.6), takes the answer
 * whenever it comes, and the service grants once.
 */
const device = keysFrom(0x40);
const GRANT_TAKES_MS = 3_000;
let world: EnrollmentWorld;

before(async () => {
  // The broker's account creation is where a loaded service spends its time.
  world = await startEnrollmentWorld(keysFrom(0x30), (accounts) => ({
    grant: async (deviceId, password, clientId) => { await sleep(GRANT_TAKES_MS); await accounts.grant(deviceId, password, clientId); },
  }));
});

after(async () => {
  await world.close();
});

test('an answer slower than the device timeout still enrolls it, with one grant for one request', async () => {
  // What the device publishes, as any holder of the fleet account sees it on the request topic.
  const observer = await world.connectFleet();
  const sent: { id: string; iat: number }[] = [];
  observer.on('message', (_topic, payload) => {
    const body = (JSON.parse(payload.toString()) as { body: string }).body;
    sent.push(JSON.parse(Buffer.from(body, 'base64').toString()) as { id: string; iat: number });
  });
  await observer.subscribeAsync('tsunagu/enroll/request', { qos: 1 });
  const grant = await world.enroll(device, 'SN-SLOW', { responseTimeoutMs: 1_000 });
  await world.service.idle();
  assert.equal(grant.deviceId, deriveDeviceId(toBase64(device.signPublicKey)));
  // Repeats of the same request are answered from the service's records: a
  // device that sent new requests instead would show re-enrollments here.
  assert.deepEqual(world.database.auditLog().map((e) => e.event), ['enrolled']);
  await observer.endAsync();
  // Unanswered within its timeout, the request went out again as it was: same id, same issue time.
  assert.ok(sent.length >= 2, `the device sent its request ${sent.length} time(s)`);
  assert.deepEqual(new Set(sent.map((p) => `${p.id}@${p.iat}`)).size, 1, 'a repeat carried a new request id or time');
  const own = await mqtt.connectAsync(world.broker.url, { username: grant.username, password: grant.password, clientId: grant.clientId, reconnectPeriod: 0 });
  await own.endAsync();
});
