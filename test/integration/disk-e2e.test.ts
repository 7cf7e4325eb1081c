import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type Docker from 'dockerode';
import { stringify } from 'yaml';
import { devicePlatform, formatPlatform } from '../../agent/images/platform.js';
import { ReportedStateSchema, type ReportedState } from '../../protocol/desired.js';
import { deviceTopic } from '../../protocol/topics.js';
import { AgentProcess } from '../support/agent-process.js';
import { fleetCli, jsonLines } from '../support/deploy-cli.js';
import type { TestFleet } from '../support/fleet.js';
import { fleetSession } from '../support/fleet-session.js';
import { busyboxRootfs, pushImage } from '../support/image-writer.js';
import type { TestBroker } from '../support/mosquitto.js';
import { dockerTestEnv, TEST_LABEL, type TestImages } from '../support/supervisor-harness.js';
import { removeContainers, testDocker } from '../support/test-docker.js';
import { closeFleetWorld, startFleetWorld } from '../support/fleet-world.js';

// The disk and flash rules through the shipped binaries: `tsunagu-fleet
// deploy` → Mosquitto → the agent bundle (its config sets the log caps) →
// the test dockerd. A refusal is the device's verdict, shown by the CLI
// with the reason per service, and the device keeps running what it had.
let broker: TestBroker;
let tf: TestFleet;
let work: string;
let agent: AgentProcess;
let deviceId: string;
let docker: Docker;
let images: TestImages;
const scope = `disk-e2e-${randomBytes(3).toString('hex')}`;

function deploy(compose: Record<string, unknown>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const file = join(work, `compose-${randomBytes(3).toString('hex')}.yaml`);
  writeFileSync(file, stringify(compose));
  return fleetCli(['deploy', '--dir', tf.fleet.dir, deviceId, file, '--timeout', '120', '--json']);
}

function web(service: Record<string, unknown>): Record<string, unknown> {
  return { services: { web: { network_mode: 'none', restart: 'always', command: ['sleep', '3600'], labels: { [TEST_LABEL]: scope }, ...service } } };
}

async function running(): Promise<Docker.ContainerInfo[]> {
  return (await docker.listContainers({ filters: { label: [`${TEST_LABEL}=${scope}`] } })).filter((c) => c.State === 'running');
}

/** The result line of the CLI: the device's final status, error and per-service reasons. */
function result(stdout: string): Record<string, unknown> | undefined {
  return jsonLines(stdout).find((l) => l.type === 'result');
}

/** The device's retained `state` message, as a fleet tool reads it. */
async function retainedState(): Promise<ReportedState> {
  const fleet = await fleetSession(tf, broker.url);
  try {
    const topic = deviceTopic(deviceId, 'state');
    const message = new Promise<Buffer>((resolve) => fleet.client.on('message', (t, payload) => { if (t === topic) resolve(payload); }));
    await fleet.client.subscribeAsync(topic, { qos: 1 });
    return ReportedStateSchema.parse(JSON.parse((await message).toString()));
  } finally {
    await fleet.close();
  }
}

before(async () => {
  const env = dockerTestEnv();
  images = env.images;
  docker = testDocker();
  ({ broker, tf, work } = await startFleetWorld('tsunagu-disk-e2e-'));
  const bootstrapPath = join(work, 'bootstrap.json');
  writeFileSync(bootstrapPath, JSON.stringify(tf.bootstrap));
  agent = new AgentProcess({
    stateDir: join(work, 'device'), bootstrapPath,
    configYaml: [
      'enrollment: { startupJitterMs: 0 }',
      'link: { backoffBaseMs: 100, backoffCapMs: 1000 }',
      `runtime: { scope: ${scope} }`,
      'disk: { reserveBytes: 1048576, containerLogs: { maxSize: 5m, maxFiles: 2 } }',
      '',
    ].join('\n'),
  });
  deviceId = String((await agent.waitForMsg('enrolled')).deviceId);
  await agent.waitForMsg(/→ online/);
});

after(async () => {
  await agent?.stop();
  await removeContainers(docker, `${TEST_LABEL}=${scope}`);
  await closeFleetWorld({ broker, tf, work });
});

test('the device\'s log caps reach the container, and its disk rules the retained state', async () => {
  const r = await deploy(web({ image: images.busybox1 }));
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const [c] = await running();
  assert.ok(c);
  assert.deepEqual((await docker.getContainer(c.Id).inspect()).HostConfig.LogConfig, { Type: 'json-file', Config: { 'max-file': '2', 'max-size': '5m' } });
  const state = await retainedState();
  assert.deepEqual(state.disk && [state.disk.reserveBytes, state.disk.containerLogs, state.disk.gc], [1048576, { maxSize: '5m', maxFiles: 2 }, { highWatermarkPercent: 85, lowWatermarkPercent: 70 }]);
});

test('an image for another architecture, and logs above the caps, are refused with a reason per service; nothing changes', async () => {
  const before = (await running())[0]?.Id;
  const foreign = { os: 'linux', architecture: devicePlatform().architecture === 's390x' ? 'riscv64' : 's390x' };
  const alien = await pushImage(dockerTestEnv().registry, `tsunagu-test-disk/e2e-${randomBytes(3).toString('hex')}`, 'alien', [busyboxRootfs()], foreign);
  const r = await deploy({ services: {
    ...(web({ image: images.busybox2, logging: { options: { 'max-size': '100m' } } }).services as Record<string, unknown>),
    other: { image: alien.ref, network_mode: 'none', labels: { [TEST_LABEL]: scope } },
  } });
  assert.equal(r.status, 2, r.stderr + r.stdout);
  const outcome = result(r.stdout);
  const error = outcome?.error as ReportedState['error'];
  assert.equal(outcome?.status, 'refused');
  assert.equal(error?.code, 'ADMISSION_REFUSED');
  assert.deepEqual(error?.services, {
    web: "logging.options.max-size 100m exceeds this device's cap of 5m",
    other: `image ${alien.ref} is built for ${formatPlatform(foreign)}; this device is ${formatPlatform(devicePlatform())}`,
  });
  assert.deepEqual((await running()).map((c) => c.Id), [before], 'the running version stays');
});
