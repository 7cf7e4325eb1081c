import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type Docker from 'dockerode';
import { stringify } from 'yaml';
import { AgentProcess } from '../support/agent-process.js';
import { fleetCli } from '../support/deploy-cli.js';
import type { TestFleet } from '../support/fleet.js';
import type { TestBroker } from '../support/mosquitto.js';
import { connectAs, retainedUnderDevice } from '../support/mqtt-probe.js';
import { dockerTestEnv, TEST_LABEL, type TestImages } from '../support/supervisor-harness.js';
import { removeContainers, testDocker } from '../support/test-docker.js';
import { closeFleetWorld, startFleetWorld } from '../support/fleet-world.js';

// `tsunagu-fleet retire` end to end: the shipped fleet CLI, real Mosquitto,
// the shipped agent bundle running a service container on the test dockerd.
let broker: TestBroker;
let tf: TestFleet;
let work: string;
let bootstrapPath: string;
let docker: Docker;
let images: TestImages;
const scope = `retire-${randomBytes(3).toString('hex')}`;

function agentConfig(): string {
  return `enrollment: { startupJitterMs: 0, backoffBaseMs: 200, backoffCapMs: 2000 }\nlink: { backoffBaseMs: 100, backoffCapMs: 1000 }\nruntime: { scope: ${scope} }\nrollout: { probationMs: 1000 }\n`;
}

async function ourContainers(): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${scope}`] } });
}

before(async () => {
  const env = dockerTestEnv();
  images = env.images;
  docker = testDocker();
  ({ broker, tf, work, bootstrapPath } = await startFleetWorld('tsunagu-retire-'));
});

after(async () => {
  await removeContainers(docker, `${TEST_LABEL}=${scope}`);
  await closeFleetWorld({ broker, tf, work });
});

test('retire: the device removes its service, wipes its identity and secrets, stops for good, and is revoked', async () => {
  const stateDir = join(work, 'device');
  const agent = new AgentProcess({ stateDir, bootstrapPath, configYaml: agentConfig() });
  const admin = await connectAs(broker.url, tf.fleet.config.broker.username, tf.fleet.config.broker.password);
  try {
    const deviceId = await agent.enrolledAndOnline();
    const compose = join(work, 'compose.yaml');
    writeFileSync(compose, stringify({ services: { web: {
      image: images.busybox1, network_mode: 'none', restart: 'always', command: ['sleep', '3600'], labels: { [TEST_LABEL]: scope },
      environment: { TOKEN: 'retire-s3cret' }, 'x-tsunagu': { secrets: ['TOKEN'] },
    } } }));
    const deployed = await fleetCli(['deploy', '--dir', tf.fleet.dir, deviceId, compose, '--timeout', '120']);
    assert.equal(deployed.status, 0, deployed.stderr + deployed.stdout);
    assert.equal((await ourContainers()).filter((c) => c.State === 'running').length, 1);
    const { password } = (JSON.parse(readFileSync(join(stateDir, 'identity.json'), 'utf8')) as { grant: { password: string } }).grant;

    const retired = await fleetCli(['retire', '--dir', tf.fleet.dir, deviceId, '--timeout', '20000']);
    assert.equal(retired.status, 0, retired.stderr + retired.stdout);
    assert.match(retired.stdout, new RegExp(`${deviceId}: retired`));
    assert.match(retired.stdout, new RegExp(`revoked ${deviceId}`));

    // The agent finishes its part and exits on its own, with success.
    assert.equal(await agent.exited, 0);
    const done = await agent.waitForMsg(/^retired:/);
    assert.deepEqual(done.services, ['web']);
    assert.deepEqual(await ourContainers(), []);
    // Nothing of its identity or secrets is left: only the status file and the marker.
    assert.deepEqual(readdirSync(stateDir).sort(), ['retired.json', 'status.json']);
    for (const name of readdirSync(stateDir)) {
      const text = readFileSync(join(stateDir, name), 'utf8');
      assert.ok(!text.includes(password) && !text.includes('retire-s3cret') && !text.includes(tf.claimToken), `${name} holds a secret`);
    }

    // The fleet side: revoked, credential dead, nothing retained, audit kept.
    assert.equal(tf.server?.database.byId(deviceId)?.status, 'revoked');
    await assert.rejects(connectAs(broker.url, deviceId, password, deviceId));
    assert.deepEqual(await retainedUnderDevice(admin, deviceId), []);
    assert.ok(tf.server?.database.auditLog(50).some((e) => e.deviceId === deviceId && e.event === 'revoked' && e.message.startsWith('retired')), "tf.server?.database.auditLog(50).some((e) => e.deviceId === deviceId && e.event === 'revoked' && ...");

    // Started again, it stays stopped and says why (exit 78: systemd does not restart it).
    const again = new AgentProcess({ stateDir, bootstrapPath, configYaml: agentConfig() });
    assert.equal(await again.exited, 78);
    assert.ok(again.lines.some((l) => /was retired/.test(String(l.msg))), JSON.stringify(again.lines.slice(-3)));
    assert.equal(readdirSync(stateDir).includes('keys.json'), false, 'no new keys were made');
  } finally {
    await admin.endAsync(true);
    await agent.stop();
  }
});

test('retire of a device that does not answer: nothing changes (exit 3) unless --force, which revokes it without its wipe', async () => {
  const stateDir = join(work, 'offline');
  const agent = new AgentProcess({ stateDir, bootstrapPath, configYaml: agentConfig() });
  const deviceId = await agent.enrolledAndOnline();
  await agent.stop();

  const timedOut = await fleetCli(['retire', '--dir', tf.fleet.dir, deviceId, '--timeout', '1500']);
  assert.equal(timedOut.status, 3, timedOut.stderr);
  assert.match(timedOut.stderr, /not revoked/);
  assert.equal(tf.server?.database.byId(deviceId)?.status, 'active');

  const forced = await fleetCli(['retire', '--dir', tf.fleet.dir, deviceId, '--timeout', '1500', '--force']);
  assert.equal(forced.status, 0, forced.stderr);
  assert.match(forced.stdout, /revoked anyway/);
  assert.equal(tf.server?.database.byId(deviceId)?.status, 'revoked');
  // Its files stay: it never got the command.
  assert.ok(readdirSync(stateDir).includes('identity.json'), "readdirSync(stateDir).includes('identity.json')");
});
