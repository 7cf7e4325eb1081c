import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { devicePlatform, formatPlatform } from '../../agent/images/platform.js';
import { ReportedStateSchema, type ReportedState } from '../../protocol/desired.js';
import { deviceTopic } from '../../protocol/topics.js';
import type { AgentProcess } from '../support/agent-process.js';
import { deployTo, jsonLines, type CliResult } from '../support/deploy-cli.js';
import { startFaultDevice } from '../support/fault-device.js';
import { closeEngineFleetWorld, runningIn, startEngineFleetWorld, type EngineFleetWorld } from '../support/fleet-world.js';
import { busyboxRootfs, pushImage } from '../support/image-writer.js';
import { dockerTestEnv, TEST_LABEL } from '../support/test-docker.js';

// The disk and flash rules through the shipped binaries: `tsunagu-fleet
// deploy` → Mosquitto → the agent bundle (its config sets the log caps) →
// the test dockerd. A refusal is the device's verdict, shown by the CLI
// with the reason per service, and the device keeps running what it had.
let w: EngineFleetWorld;
let agent: AgentProcess;
let deviceId: string;

function deploy(compose: Record<string, unknown>): Promise<CliResult> {
  return deployTo(w.tf.fleet.dir, w.work, deviceId, compose, ['--json']);
}

function web(service: Record<string, unknown>): Record<string, unknown> {
  return { services: { web: { network_mode: 'none', restart: 'always', command: ['sleep', '3600'], labels: { [TEST_LABEL]: w.scope }, ...service } } };
}

/** The result line of the CLI: the device's final status, error and per-service reasons. */
function result(stdout: string): Record<string, unknown> | undefined {
  return jsonLines(stdout).find((l) => l.type === 'result');
}

/** The device's retained `state` message, as a fleet tool reads it. */
async function retainedState(): Promise<ReportedState> {
  const topic = deviceTopic(deviceId, 'state');
  const message = new Promise<Buffer>((resolve) => w.fleet.client.on('message', (t, payload) => { if (t === topic) resolve(payload); }));
  await w.fleet.client.subscribeAsync(topic, { qos: 1 });
  return ReportedStateSchema.parse(JSON.parse((await message).toString()));
}

before(async () => {
  w = await startEngineFleetWorld('disk-e2e');
  ({ agent, deviceId } = await startFaultDevice({
    work: w.work, name: 'device', tf: w.tf, brokerUrl: w.broker.url,
    configYaml: [
      'enrollment: { startupJitterMs: 0 }',
      'link: { backoffBaseMs: 100, backoffCapMs: 1000 }',
      `runtime: { scope: ${w.scope} }`,
      'disk: { reserveBytes: 1048576, containerLogs: { maxSize: 5m, maxFiles: 2 } }',
      '',
    ].join('\n'),
  }));
});

after(async () => {
  await agent?.stop();
  await closeEngineFleetWorld(w);
});

test('the device\'s log caps reach the container, and its disk rules the retained state', async () => {
  const r = await deploy(web({ image: w.images.busybox1 }));
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const [c] = await runningIn(w.docker, w.scope);
  assert.ok(c, 'c');
  assert.deepEqual((await w.docker.getContainer(c.Id).inspect()).HostConfig.LogConfig, { Type: 'json-file', Config: { 'max-file': '2', 'max-size': '5m' } });
  const state = await retainedState();
  assert.deepEqual(state.disk && [state.disk.reserveBytes, state.disk.containerLogs, state.disk.gc], [1048576, { maxSize: '5m', maxFiles: 2 }, { highWatermarkPercent: 85, lowWatermarkPercent: 70 }]);
});

test('an image for another architecture, and logs above the caps, are refused with a reason per service; nothing changes', async () => {
  const before = (await runningIn(w.docker, w.scope))[0]?.Id;
  const foreign = { os: 'linux', architecture: devicePlatform().architecture === 's390x' ? 'riscv64' : 's390x' };
  const alien = await pushImage(dockerTestEnv().registry, `tsunagu-test-disk/e2e-${randomBytes(3).toString('hex')}`, 'alien', [busyboxRootfs()], foreign);
  const r = await deploy({ services: {
    ...(web({ image: w.images.busybox2, logging: { options: { 'max-size': '100m' } } }).services as Record<string, unknown>),
    other: { image: alien.ref, network_mode: 'none', labels: { [TEST_LABEL]: w.scope } },
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
  assert.deepEqual((await runningIn(w.docker, w.scope)).map((c) => c.Id), [before], 'the running version stays');
});
