import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type Docker from 'dockerode';
import { stringify } from 'yaml';
import { AgentProcess } from '../support/agent-process.js';
import { fleetCli } from '../support/deploy-cli.js';
import type { TestFleet } from '../support/fleet.js';
import type { TestBroker } from '../support/mosquitto.js';
import { dockerTestEnv, TEST_LABEL } from '../support/supervisor-harness.js';
import { waitFor } from '../support/wait-for.js';
import { removeContainers, testDocker } from '../support/test-docker.js';
import { closeFleetWorld, startFleetWorld } from '../support/fleet-world.js';

// Scenario 6: each file of the agent's state directory truncated or filled with NUL bytes
// (what a power cut does to a card without power-loss protection). For each: the file is moved
// aside, the agent recovers to what docs/reliability.md says, it never crash-loops, and the
// running container is never touched.
let broker: TestBroker;
let tf: TestFleet;
let work: string;
let stateDir: string;
let bootstrapPath: string;
let agent: AgentProcess | undefined;
let deviceId: string;
let docker: Docker;
let containerId: string;
const scope = `corrupt-${randomBytes(3).toString('hex')}`;
const config = `enrollment: { startupJitterMs: 0, backoffBaseMs: 200, backoffCapMs: 1000 }\nlink: { backoffBaseMs: 100, backoffCapMs: 1000 }\nruntime: { scope: ${scope} }\nrollout: { probationMs: 0 }\n`;

function startAgent(withBootstrap = true): AgentProcess {
  agent = new AgentProcess({ stateDir, configYaml: config, ...(withBootstrap ? { bootstrapPath } : {}) });
  return agent;
}

function truncate(file: string): void {
  const bytes = readFileSync(join(stateDir, file));
  writeFileSync(join(stateDir, file), bytes.subarray(0, Math.floor(bytes.length / 2)));
}

/** What a torn write on some filesystems leaves: the right size, all zeros. */
function zeroFill(file: string): void {
  const path = join(stateDir, file);
  writeFileSync(path, Buffer.alloc(existsSync(path) ? statSync(path).size : 512));
}

async function assertWorkloadUntouched(): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${scope}`] } });
  assert.deepEqual(containers.map((c) => [c.Id, c.State]), [[containerId, 'running']], 'the same container, still running');
}

async function pingAnswered(): Promise<void> {
  const r = await fleetCli(['send', '--dir', tf.fleet.dir, deviceId, 'ping', '--json', '--timeout', '20000']);
  assert.equal(r.status, 0, r.stderr + r.stdout);
}

before(async () => {
  const env = dockerTestEnv();
  docker = testDocker();
  ({ broker, tf, work, stateDir, bootstrapPath } = await startFleetWorld('tsunagu-corrupt-'));
  startAgent();
  deviceId = await agent!.enrolledAndOnline(30_000);
  const compose = join(work, 'compose.yaml');
  writeFileSync(compose, stringify({ services: { web: { image: env.images.busybox1, network_mode: 'none', restart: 'always', labels: { [TEST_LABEL]: scope } } } }));
  const r = await fleetCli(['deploy', '--dir', tf.fleet.dir, deviceId, compose, '--timeout', '90']);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  await pingAnswered(); // commands.json
  const [c] = await docker.listContainers({ filters: { label: [`${TEST_LABEL}=${scope}`] } });
  containerId = c!.Id;
  for (const f of ['keys.json', 'identity.json', 'bootstrap.json', 'commands.json', 'desired.msg']) assert.ok(existsSync(join(stateDir, f)), f);
  await agent!.stop();
});

after(async () => {
  await agent?.stop();
  await removeContainers(docker, `${TEST_LABEL}=${scope}`);
  await closeFleetWorld({ broker, tf, work });
});

test('commands.json truncated, service-holds.json and backoff.json full of NULs: moved aside, the agent runs on and answers commands', async () => {
  truncate('commands.json');
  zeroFill('service-holds.json');
  zeroFill('backoff.json');
  const a = startAgent();
  await a.waitForMsg(/→ online/, 30_000);
  for (const f of ['commands.json', 'service-holds.json', 'backoff.json']) {
    assert.ok(existsSync(join(stateDir, `${f}.bad`)), `${f} moved aside`);
    assert.ok(a.lines.some((l) => l.code === 'STATE_CORRUPT' || (l.err as { code?: string } | undefined)?.code === 'STATE_CORRUPT' || String(l.msg).includes(f)), `${f} reported`);
  }
  await pingAnswered();
  JSON.parse(readFileSync(join(stateDir, 'commands.json'), 'utf8')); // written again, whole
  await assertWorkloadUntouched();
  await a.stop();
});

test('desired.msg full of NULs: moved aside, the broker\'s retained copy restores it, the container is kept', async () => {
  zeroFill('desired.msg');
  const a = startAgent();
  await a.waitForMsg(/→ online/, 30_000);
  await a.waitForMsg(/desired\.msg was unusable/, 10_000);
  // The retained desired state comes back and is written again.
  assert.ok(existsSync(join(stateDir, 'desired.msg.bad')), 'moved aside');
  const restored = (): boolean => existsSync(join(stateDir, 'desired.msg')) && !readFileSync(join(stateDir, 'desired.msg')).every((b) => b === 0);
  await waitFor('desired.msg restored from the broker', restored, 20_000, { intervalMs: 200 });
  await assertWorkloadUntouched();
  await a.stop();
});

test('identity.json truncated: moved aside, the device enrolls again with its keys under the same id', async () => {
  truncate('identity.json');
  const a = startAgent();
  const enrolled = await a.waitForMsg('enrolled', 30_000);
  assert.equal(enrolled.deviceId, deviceId);
  await a.waitForMsg(/→ online/, 30_000);
  assert.ok(existsSync(join(stateDir, 'identity.json.bad')), "existsSync(join(stateDir, 'identity.json.bad'))");
  await pingAnswered();
  await assertWorkloadUntouched();
  await a.stop();
});

test('keys.json full of NULs: new keys, a re-key request an operator approves; the containers run meanwhile', async () => {
  zeroFill('keys.json');
  const a = startAgent();
  // A new key claiming an active device's serial is never let in without a person: the
  // device waits, says so, and keeps running its containers.
  await a.waitForMsg('waiting for an operator to approve this device', 30_000);
  assert.ok(existsSync(join(stateDir, 'keys.json.bad')), "existsSync(join(stateDir, 'keys.json.bad'))");
  assert.equal(a.lines.some((l) => String(l.msg).startsWith('stderr:')), false, 'no crash');
  await assertWorkloadUntouched();
  const listed = await fleetCli(['devices', '--dir', tf.fleet.dir, '--json']);
  const request = (JSON.parse(listed.stdout) as { deviceId: string; status: string; replaces: string | null }[])
    .find((d) => d.status === 'pending' && d.replaces === deviceId);
  assert.ok(request, `the operator sees a re-key request for ${deviceId}: ${listed.stdout}`);
  const approve = await fleetCli(['approve', '--dir', tf.fleet.dir, request.deviceId]);
  assert.equal(approve.status, 0, approve.stderr + approve.stdout);
  const enrolled = await a.waitForMsg('enrolled', 30_000);
  assert.equal(enrolled.deviceId, deviceId, 're-keyed under the same device id');
  await a.waitForMsg(/→ online/, 30_000);
  await pingAnswered(); // the fleet verifies replies with the new key
  await assertWorkloadUntouched();
  await a.stop();
});

test('bootstrap.json truncated and no other copy: moved aside, exit 78 at once (systemd does not restart on it); a new file brings it back', async () => {
  truncate('bootstrap.json');
  const a = startAgent(false);
  const code = await Promise.race([a.exited, new Promise((r) => setTimeout(() => r('still running'), 20_000))]);
  assert.equal(code, 78);
  assert.ok(a.lines.some((l) => /BOOTSTRAP_MISSING/.test(String(l.msg))), 'a clear error');
  assert.ok(existsSync(join(stateDir, 'bootstrap.json.bad')), "existsSync(join(stateDir, 'bootstrap.json.bad'))");
  await assertWorkloadUntouched();
  const b = startAgent(true);
  await b.waitForMsg(/→ online/, 30_000);
  await assertWorkloadUntouched();
  await b.stop();
});
