import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../common/logger.js';
import { deviceFacts } from '../../agent/enrollment/device-facts.js';
import { enroll } from '../../agent/enrollment/enroller.js';
import { defaultEd25519 } from '../../protocol/ed25519.js';
import type { EnrollGrant } from '../../protocol/enrollment.js';
import { generateKeyPairs } from '../../protocol/keys.js';
import { deviceTopic, enrollTopics } from '../../protocol/topics.js';
import { DynsecClient } from '../../provisioning/dynsec-client.js';
import { createTestFleet, type TestFleet } from '../support/fleet.js';
import { startMosquitto, type TestBroker } from '../support/mosquitto.js';
import { collect, collectUntil, connectAs, subscribeGranted, tryPublish } from '../support/mqtt-probe.js';

// What each credential can do, asked of the real broker: the bootstrap
// credential and one device's credential must not reach another device.
// The same questions go to Mosquitto (dynamic security, MQTT 5) and to the
// broker embedded in `tsunagu-fleet serve` (Aedes, MQTT 3.1.1).
for (const kind of ['mosquitto', 'embedded'] as const) {
  describe(`confinement on the ${kind} broker`, () => {
    let broker: TestBroker | undefined;
    let tf: TestFleet;
    let a: EnrollGrant;
    let b: EnrollGrant;
    let fleetClient: MqttClient;
    const open: MqttClient[] = [];

    async function enrollDevice(serial: string): Promise<EnrollGrant> {
      const keys = generateKeyPairs();
      return enroll({
        bootstrap: tf.bootstrap, keys, ed: defaultEd25519(), logger: silentLogger(), signal: AbortSignal.timeout(20_000),
        claim: { ...deviceFacts({ serial }), claimToken: tf.claimToken }, backoff: { baseMs: 100, capMs: 500 },
      });
    }

    const connect = (username: string, password: string, clientId?: string): Promise<MqttClient> =>
      connectAs(tf.brokerUrl, username, password, clientId, tf.protocolVersion);

    async function client(username: string, password: string, clientId?: string): Promise<MqttClient> {
      const c = await connect(username, password, clientId);
      open.push(c);
      return c;
    }

    /**
     * A forbidden publish from its own connection: Mosquitto refuses it and
     * keeps the link, the embedded broker closes it; either way nothing may arrive.
     */
    async function publishOnce(username: string, password: string, clientId: string | undefined, topic: string, payload: string): Promise<void> {
      const c = await connect(username, password, clientId);
      await tryPublish(c, topic, payload);
      await c.endAsync(true).catch(() => undefined);
    }

    before(async () => {
      if (kind === 'mosquitto') broker = await startMosquitto();
      tf = await createTestFleet(broker ?? 'embedded');
      await tf.startServer();
      a = await enrollDevice('serial-a');
      b = await enrollDevice('serial-b');
      fleetClient = await client(tf.fleet.config.broker.username, tf.fleet.config.broker.password);
    });

    after(async () => {
      for (const c of open) await c.endAsync(true).catch(() => undefined);
      await tf.close();
      await broker?.close();
    });

    test('the bootstrap credential can only enroll', async () => {
      const boot = await client(tf.bootstrap.broker.username, tf.bootstrap.broker.password);
      for (const filter of ['#', 'tsunagu/#', 'tsunagu/devices/+/cmd', deviceTopic(a.deviceId, 'desired'), deviceTopic(a.deviceId, 'reply'), '$share/x/tsunagu/enroll/request', enrollTopics.request]) {
        assert.ok(await subscribeGranted(boot, filter) >= 128, `bootstrap must not subscribe to ${filter}`);
      }
      assert.ok(await subscribeGranted(boot, enrollTopics.response('0'.repeat(32))) < 128, "await subscribeGranted(boot, enrollTopics.response('0'.repeat(32))) < 128");
      // Nothing sent to a device reaches it.
      const seen = collect(boot, 400);
      await fleetClient.publishAsync(deviceTopic(a.deviceId, 'cmd'), 'secret command', { qos: 1 });
      assert.deepEqual((await seen).filter((m) => m.topic.startsWith('tsunagu/devices')), []);
      // Nothing it publishes on a device topic arrives.
      assert.ok(await subscribeGranted(fleetClient, 'tsunagu/devices/#') < 128, "await subscribeGranted(fleetClient, 'tsunagu/devices/#') < 128");
      const observed = collectUntil(fleetClient, (m) => m.payload === 'marker', 10_000);
      const { username, password } = tf.bootstrap.broker;
      await publishOnce(username, password, undefined, deviceTopic(a.deviceId, 'status'), '{"forged":true}');
      await publishOnce(username, password, undefined, deviceTopic(a.deviceId, 'cmd'), '{"forged":true}');
      await publishOnce(a.username, a.password, a.clientId, deviceTopic(a.deviceId, 'events'), 'marker');
      assert.deepEqual((await observed).map((m) => m.payload), ['marker']);
      await fleetClient.unsubscribeAsync('tsunagu/devices/#');
    });

    test('a device reads and writes only its own topics', async () => {
      const devA = await client(a.username, a.password, a.clientId);
      for (const filter of ['#', 'tsunagu/devices/#', 'tsunagu/devices/+/cmd', deviceTopic(b.deviceId, 'cmd'), deviceTopic(b.deviceId, 'desired'), deviceTopic(a.deviceId, 'reply'), enrollTopics.responseFilter]) {
        assert.ok(await subscribeGranted(devA, filter) >= 128, `device must not subscribe to ${filter}`);
      }
      assert.ok(await subscribeGranted(devA, deviceTopic(a.deviceId, 'cmd')) < 128, "await subscribeGranted(devA, deviceTopic(a.deviceId, 'cmd')) < 128");
      const received = collect(devA, 400);
      await fleetClient.publishAsync(deviceTopic(b.deviceId, 'cmd'), 'for b', { qos: 1 });
      await fleetClient.publishAsync(deviceTopic(a.deviceId, 'cmd'), 'for a', { qos: 1 });
      assert.deepEqual((await received).map((m) => m.payload), ['for a']);
      await devA.endAsync(true);

      assert.ok(await subscribeGranted(fleetClient, 'tsunagu/devices/#') < 128, "await subscribeGranted(fleetClient, 'tsunagu/devices/#') < 128");
      const observed = collectUntil(fleetClient, (m) => m.payload === 'a own event', 10_000);
      await publishOnce(a.username, a.password, a.clientId, deviceTopic(b.deviceId, 'status'), 'a pretends to be b');
      await publishOnce(a.username, a.password, a.clientId, deviceTopic(a.deviceId, 'cmd'), 'a commands itself');
      await publishOnce(a.username, a.password, a.clientId, enrollTopics.request, 'a floods enrollment');
      await publishOnce(a.username, a.password, a.clientId, deviceTopic(a.deviceId, 'events'), 'a own event');
      assert.deepEqual((await observed).map((m) => m.payload), ['a own event']);
      await fleetClient.unsubscribeAsync('tsunagu/devices/#');
    });

    test('a device credential is bound to its client id, and wildcard names never authenticate', async () => {
      await assert.rejects(connect(a.username, a.password, 'someone-else'));
      await assert.rejects(connect(a.username, 'wrong password', a.clientId));
      await assert.rejects(connect('+', a.password));
      await assert.rejects(connect('#', a.password));
      await assert.rejects(connect(`${a.username}/#`, a.password, a.clientId));
    });

    test('only the fleet account administers accounts: a device cannot reset a password, the fleet can', async () => {
      await publishOnce(b.username, b.password, b.clientId, '$CONTROL/dynamic-security/v1',
        JSON.stringify({ commands: [{ command: 'setClientPassword', username: a.username, password: 'taken-over' }] }));
      await assert.rejects(connect(a.username, 'taken-over', a.clientId));
      const dynsec = new DynsecClient(fleetClient);
      try {
        await dynsec.runChecked([{ command: 'setClientPassword', username: a.username, password: 'rotated-by-the-fleet' }]);
      } finally {
        dynsec.close();
      }
      const rotated = await connect(a.username, 'rotated-by-the-fleet', a.clientId);
      await rotated.endAsync(true);
      await assert.rejects(connect(a.username, a.password, a.clientId));
    });
  });
}
