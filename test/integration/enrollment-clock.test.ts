import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import mqtt from 'mqtt';
import { toBase64 } from '../../protocol/bytes.js';
import { deriveDeviceId } from '../../provisioning/fleet-database.js';
import { startEnrollmentWorld, type EnrollmentWorld } from '../support/enrollment-world.js';
import { keysFrom } from '../support/test-keys.js';

/**
 * Enrollment end to end against Mosquitto with the production roles: a
 * device whose clock says 1970 is answered STALE_REQUEST, corrects its clock
 * with the fleet time, and is granted a credential the broker accepts.
 */
const device = keysFrom(0x20);
let world: EnrollmentWorld;

before(async () => {
  world = await startEnrollmentWorld(keysFrom(0x10));
});

after(async () => {
  await world.close();
});

test('a device booted in 1970 corrects its clock from STALE_REQUEST and enrolls', async () => {
  const grant = await world.enroll(device, 'SN-1970', {
    clock: { now: () => 86_400_000 }, // 2 January 1970
    responseTimeoutMs: 5_000,
  });
  await world.service.idle();

  assert.equal(grant.deviceId, deriveDeviceId(toBase64(device.signPublicKey)));
  const events = world.database.auditLog().reverse().map((e) => `${e.event}${e.code === null ? '' : `:${e.code}`}`);
  assert.deepEqual(events, ['refused:STALE_REQUEST', 'enrolled']);

  // The broker accepts the granted credential, under the granted client id only.
  const own = await mqtt.connectAsync(world.broker.url, { username: grant.username, password: grant.password, clientId: grant.clientId, reconnectPeriod: 0 });
  await own.endAsync();
  await assert.rejects(mqtt.connectAsync(world.broker.url, { username: grant.username, password: grant.password, clientId: 'someone-else', reconnectPeriod: 0 }));
});
