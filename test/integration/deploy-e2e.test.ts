import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type Docker from 'dockerode';
import { stringify } from 'yaml';
import { AgentProcess, FLEET_BUNDLE } from '../support/agent-process.js';
import type { TestFleet } from '../support/fleet.js';
import type { TestBroker } from '../support/mosquitto.js';
import { dockerTestEnv, TEST_LABEL, type TestImages } from '../support/supervisor-harness.js';
import { removeContainers, testDocker } from '../support/test-docker.js';
import { closeFleetWorld, startFleetWorld } from '../support/fleet-world.js';

// The operator's path end to end: `tsunagu-fleet deploy` (the shipped CLI)
// → real Mosquitto → the shipped agent bundle → the test dockerd pulling
// from the local registry. The CLI's exit status is the device's verdict.
let broker: TestBroker;
let tf: TestFleet;
let work: string;
let agent: AgentProcess;
let deviceId: string;
let docker: Docker;
let images: TestImages;
const scope = `deploy-e2e-${randomBytes(3).toString('hex')}`;

function deploy(compose: Record<string, unknown>, extra: string[] = []): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const file = join(work, `compose-${randomBytes(3).toString('hex')}.yaml`);
  writeFileSync(file, stringify(compose));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [FLEET_BUNDLE, 'deploy', '--dir', tf.fleet.dir, deviceId, file, '--timeout', '120', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

function web(service: Record<string, unknown>): Record<string, unknown> {
  return { services: { web: { network_mode: 'none', restart: 'always', command: ['sleep', '3600'], labels: { [TEST_LABEL]: scope }, ...service } } };
}

async function running(): Promise<Docker.ContainerInfo[]> {
  return (await docker.listContainers({ filters: { label: [`${TEST_LABEL}=${scope}`] } })).filter((c) => c.State === 'running');
}

before(async () => {
  const env = dockerTestEnv();
  images = env.images;
  docker = testDocker();
  ({ broker, tf, work } = await startFleetWorld('tsunagu-deploy-e2e-'));
  const bootstrapPath = join(work, 'bootstrap.json');
  writeFileSync(bootstrapPath, JSON.stringify(tf.bootstrap));
  agent = new AgentProcess({
    stateDir: join(work, 'device'), bootstrapPath,
    configYaml: `enrollment: { startupJitterMs: 0 }\nlink: { backoffBaseMs: 100, backoffCapMs: 1000 }\nruntime: { scope: ${scope} }\nrollout: { probationMs: 1500 }\n`,
  });
  deviceId = String((await agent.waitForMsg('enrolled')).deviceId);
  await agent.waitForMsg(/→ online/);
});

after(async () => {
  await agent?.stop();
  await removeContainers(docker, `${TEST_LABEL}=${scope}`);
  await closeFleetWorld({ broker, tf, work });
});

test('deploy, with a sealed secret: the CLI exits 0 once the device runs it; the secret reaches the container only', async () => {
  const r = await deploy(web({ image: images.busybox1, environment: { MODE: 'plain', TOKEN: 'deploy-s3cret' }, 'x-tsunagu': { secrets: ['TOKEN'] } }));
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const [c] = await running();
  assert.ok(c);
  assert.equal(c.Image, images.busybox1);
  const info = await docker.getContainer(c.Id).inspect();
  assert.ok(info.Config.Env.includes('TOKEN=deploy-s3cret'));
  assert.equal(agent.lines.some((l) => JSON.stringify(l).includes('deploy-s3cret')), false, 'the secret must never reach the agent log');
});

test('an image update rolls out and the CLI follows it to the end', async () => {
  const r = await deploy(web({ image: images.busybox2, environment: { MODE: 'plain', TOKEN: 'deploy-s3cret' }, 'x-tsunagu': { secrets: ['TOKEN'] } }), ['--json']);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(lines.length > 0 && lines.every((l) => typeof l === 'object'), 'only JSON lines with --json');
  const containers = await running();
  assert.equal(containers.length, 1);
  assert.equal(containers[0]!.Image, images.busybox2);
});

test('a refused field is refused by the CLI before anything is sent; the device keeps running', async () => {
  const before = (await running())[0]!.Id;
  const r = await deploy(web({ image: images.busybox1, build: '.' }));
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /services\.web\.build/);
  assert.equal((await running())[0]!.Id, before);
});
