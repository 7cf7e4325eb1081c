import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { AgentProcess } from '../support/agent-process.js';
import { deployTo, type CliResult } from '../support/deploy-cli.js';
import { startFaultDevice } from '../support/fault-device.js';
import { closeEngineFleetWorld, runningIn, startEngineFleetWorld, type EngineFleetWorld } from '../support/fleet-world.js';
import { TEST_LABEL } from '../support/test-docker.js';

// The operator's path end to end: `tsunagu-fleet deploy` (the shipped CLI)
// → real Mosquitto → the shipped agent bundle → the test dockerd pulling
// from the local registry. The CLI's exit status is the device's verdict.
let w: EngineFleetWorld;
let agent: AgentProcess;
let deviceId: string;

function deploy(compose: Record<string, unknown>, extra: string[] = []): Promise<CliResult> {
  return deployTo(w.tf.fleet.dir, w.work, deviceId, compose, extra);
}

function web(service: Record<string, unknown>): Record<string, unknown> {
  return { services: { web: { network_mode: 'none', restart: 'always', command: ['sleep', '3600'], labels: { [TEST_LABEL]: w.scope }, ...service } } };
}

before(async () => {
  w = await startEngineFleetWorld('deploy-e2e');
  ({ agent, deviceId } = await startFaultDevice({
    work: w.work, name: 'device', tf: w.tf, brokerUrl: w.broker.url,
    configYaml: `enrollment: { startupJitterMs: 0 }\nlink: { backoffBaseMs: 100, backoffCapMs: 1000 }\nruntime: { scope: ${w.scope} }\nrollout: { probationMs: 1500 }\n`,
  }));
});

after(async () => {
  await agent?.stop();
  await closeEngineFleetWorld(w);
});

test('deploy, with a sealed secret: the CLI exits 0 once the device runs it; the secret reaches the container only', async () => {
  const r = await deploy(web({ image: w.images.busybox1, environment: { MODE: 'plain', TOKEN: 'deploy-s3cret' }, 'x-tsunagu': { secrets: ['TOKEN'] } }));
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const [c] = await runningIn(w.docker, w.scope);
  assert.ok(c, 'c');
  assert.equal(c.Image, w.images.busybox1);
  const info = await w.docker.getContainer(c.Id).inspect();
  assert.ok(info.Config.Env.includes('TOKEN=deploy-s3cret'), "info.Config.Env.includes('TOKEN=deploy-s3cret')");
  assert.equal(agent.lines.some((l) => JSON.stringify(l).includes('deploy-s3cret')), false, 'the secret must never reach the agent log');
});

test('an image update rolls out and the CLI follows it to the end', async () => {
  const r = await deploy(web({ image: w.images.busybox2, environment: { MODE: 'plain', TOKEN: 'deploy-s3cret' }, 'x-tsunagu': { secrets: ['TOKEN'] } }), ['--json']);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(lines.length > 0 && lines.every((l) => typeof l === 'object'), 'only JSON lines with --json');
  const containers = await runningIn(w.docker, w.scope);
  assert.equal(containers.length, 1);
  assert.equal(containers[0]!.Image, w.images.busybox2);
});

test('a refused field is refused by the CLI before anything is sent; the device keeps running', async () => {
  const before = (await runningIn(w.docker, w.scope))[0]!.Id;
  const r = await deploy(web({ image: w.images.busybox1, build: '.' }));
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /services\.web\.build/);
  assert.equal((await runningIn(w.docker, w.scope))[0]!.Id, before);
});
