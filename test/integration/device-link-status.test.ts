import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import mqtt from 'mqtt';
import { silentLogger } from '../../common/logger.js';
import { DeviceLink } from '../../agent/link/mqtt-device-link.js';
import { deviceRole, deviceRoleName, FLEET_ROLE, fleetRole } from '../../provisioning/broker-roles.js';
import { DynsecClient } from '../../provisioning/dynsec-client.js';
import { startMosquitto, type TestBroker } from '../support/mosquitto.js';
import { TcpProxy } from '../support/tcp-proxy.js';

/**
 * The retained status a device leaves behind, against a real Mosquitto with
 * the production roles: "stopped" after a clean stop, never overwritten by
 * the last will.
 */
let broker: TestBroker;
const deviceId = 'd-0123456789abcdef0123';
const devicePassword = 'device-password-0123456789';
const watcherPassword = 'watcher-password-0123456789';

before(async () => {
  broker = await startMosquitto();
  const admin = await mqtt.connectAsync(broker.url, { username: broker.adminUser, password: broker.adminPassword, reconnectPeriod: 0 });
  const dynsec = new DynsecClient(admin);
  await dynsec.putRole(fleetRole());
  await dynsec.putClient({ username: 'watcher', password: watcherPassword, roles: [FLEET_ROLE] });
  await dynsec.putRole(deviceRole(deviceId));
  await dynsec.putClient({ username: deviceId, password: devicePassword, clientId: deviceId, roles: [deviceRoleName(deviceId)] });
  dynsec.close();
  await admin.endAsync();
});

after(async () => {
  await broker.close();
});

interface Status { state: string; reason?: string }

for (const protocolVersion of [5, 4] as const) {
  test(`MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}: a clean stop leaves "stopped" retained, and no will follows`, async () => {
    const watcher = await mqtt.connectAsync(broker.url, { username: 'watcher', password: watcherPassword, protocolVersion, reconnectPeriod: 0 });
    const seen: Status[] = [];
    watcher.on('message', (_topic, payload) => {
      if (payload.length > 0) seen.push(JSON.parse(payload.toString('utf8')) as Status);
    });
    await watcher.subscribeAsync(`tsunagu/devices/${deviceId}/status`, { qos: 1 });

    const link = new DeviceLink({
      deviceId, clientId: deviceId, logger: silentLogger(), agentVersion: 'test',
      endpoint: { url: broker.url, username: deviceId, password: devicePassword, protocolVersion },
    });
    const online = new Promise<void>((resolve) => link.on('state', (s) => { if (s === 'online') resolve(); }));
    link.start();
    await online;
    await link.close();
    await new Promise((r) => setTimeout(r, 1_000)); // time for a will, if the broker were to send one
    await watcher.endAsync();

    // The first message may be the retained status of the previous test; after "online" comes exactly one "stopped".
    const lastOnline = seen.map((s) => s.state).lastIndexOf('online');
    assert.ok(lastOnline >= 0, 'the link published its online status');
    assert.deepEqual(seen.slice(lastOnline + 1).map((s) => `${s.state}/${s.reason}`), ['offline/stopped']);

    // A newcomer reads the retained status.
    const reader = await mqtt.connectAsync(broker.url, { username: 'watcher', password: watcherPassword, protocolVersion, reconnectPeriod: 0 });
    const retained = new Promise<Status>((resolve) => reader.once('message', (_t, payload) => resolve(JSON.parse(payload.toString('utf8')) as Status)));
    await reader.subscribeAsync(`tsunagu/devices/${deviceId}/status`, { qos: 1 });
    const status = await retained;
    await reader.endAsync();
    assert.equal(status.state, 'offline');
    assert.equal(status.reason, 'stopped');
  });
}

test('a stop while the link is black-holed ends within seconds: the "stopped" status is not waited for forever', async () => {
  const proxy = await TcpProxy.start({ host: '127.0.0.1', port: Number(new URL(broker.url).port) });
  const link = new DeviceLink({
    deviceId, clientId: deviceId, logger: silentLogger(), agentVersion: 'test',
    // A keepalive far longer than the test: only the link's own bound can end the stop.
    keepaliveSeconds: 600,
    endpoint: { url: proxy.url, username: deviceId, password: devicePassword, protocolVersion: 5 },
  });
  try {
    const online = new Promise<void>((resolve) => link.on('state', (s) => { if (s === 'online') resolve(); }));
    link.start();
    await online;
    proxy.blackhole();
    const began = Date.now();
    // Before the bound, MQTT.js kept the QoS 1 publish of the status pending for good (clean: false
    // keeps it for a resend), and the agent's stop with it: systemd had to kill the agent.
    const closed = await Promise.race([link.close().then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 15_000))]);
    assert.ok(closed, 'link.close() returned');
    assert.ok(Date.now() - began < 10_000, `closed in ${Date.now() - began} ms`);
    assert.equal(link.state, 'closed');
  } finally {
    await proxy.close();
  }
});
