import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { AgentProcess } from '../support/agent-process.js';
import { fleetCliSync, startServe } from '../support/deploy-cli.js';
import { startMosquitto, type TestBroker } from '../support/mosquitto.js';
import { waitFor } from '../support/wait-for.js';

// The whole product path with the shipped bundles: fleet CLI init and
// bootstrap, the enrollment service as its own process, and an agent that
// has nothing but the bootstrap file.
let broker: TestBroker;
let work: string;
let fleetDir: string;
let bootstrapPath: string;
let serve: ChildProcess | undefined;

const fleet = fleetCliSync;

interface DeviceRow { deviceId: string; status: string; online: boolean; serial: string; replaces: string | null }
function devices(): DeviceRow[] {
  const r = fleet('devices', '--dir', fleetDir, '--json');
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as DeviceRow[];
}

/** An agent for the device whose state lives in `stateDir`; each device presents its own serial. */
function agentAt(stateDir: string): AgentProcess {
  return new AgentProcess({ stateDir, bootstrapPath, serial: `e2e-${basename(stateDir)}` });
}

before(async () => {
  broker = await startMosquitto();
  work = mkdtempSync(join(tmpdir(), 'tsunagu-e2e-'));
  fleetDir = join(work, 'fleet');
  bootstrapPath = join(work, 'bootstrap.json');
  const init = fleet('init', '--dir', fleetDir, '--fleet-id', 'e2e', '--broker', broker.url, '--admin-user', broker.adminUser,
    '--admin-password', broker.adminPassword, '--claim-token', 'batch-7-token');
  assert.equal(init.status, 0, init.stderr);
  const boot = fleet('bootstrap', '--dir', fleetDir, '--out', bootstrapPath, '--claim-token', 'batch-7-token');
  assert.equal(boot.status, 0, boot.stderr);
  serve = await startServe(fleetDir);
});

after(async () => {
  serve?.kill('SIGTERM');
  await broker.close();
  rmSync(work, { recursive: true, force: true });
});

test('a device with only a bootstrap file enrolls, comes online, and a restart skips enrollment', async () => {
  const stateDir = join(work, 'dev-a');
  const agent = agentAt(stateDir);
  const enrolled = await agent.waitForMsg('enrolled');
  await agent.waitForMsg(/link connecting → online/);
  const deviceId = String(enrolled.deviceId);
  const row = await waitFor('the device online', () => devices().find((d) => d.deviceId === deviceId && d.online));
  assert.equal(row.status, 'active');
  // Identity and keys are the owner's alone.
  for (const name of ['keys.json', 'identity.json', 'bootstrap.json']) {
    const mode = spawnSync('stat', ['-c', '%a', join(stateDir, name)], { encoding: 'utf8' }).stdout.trim();
    assert.equal(mode, '600', `${name} mode`);
  }
  // A clean stop marks the device offline (retained), seen by the service.
  assert.equal(await agent.stop(), 0);
  await waitFor('the device offline', () => devices().find((d) => d.deviceId === deviceId && !d.online));

  const again = agentAt(stateDir);
  await again.waitForMsg('identity found; skipping enrollment');
  await again.waitForMsg(/→ online/);
  assert.equal(again.lines.some((l) => l.msg === 'enrolled'), false);
  await waitFor('the device online again', () => devices().find((d) => d.deviceId === deviceId && d.online));
  // SIGKILL: the broker publishes the last will.
  await again.stop('SIGKILL');
  await waitFor('the device offline again', () => devices().find((d) => d.deviceId === deviceId && !d.online));
  assert.equal(devices().filter((d) => d.deviceId === deviceId).length, 1);
});

test('power lost after the reply but before it was stored: the device enrolls again to the same id', async () => {
  const stateDir = join(work, 'dev-b');
  const first = agentAt(stateDir);
  const enrolled = await first.waitForMsg('enrolled');
  await first.stop('SIGKILL');
  // Equivalent on disk to a cut between receiving the grant and storing it: keys exist, identity does not.
  rmSync(join(stateDir, 'identity.json'), { force: true });
  const second = agentAt(stateDir);
  const reenrolled = await second.waitForMsg('enrolled');
  assert.equal(reenrolled.deviceId, enrolled.deviceId);
  await second.waitForMsg(/→ online/);
  await second.stop();
  assert.equal(devices().filter((d) => d.deviceId === enrolled.deviceId).length, 1);
});

test('a corrupt identity file is moved aside and the device recovers without a crash loop', async () => {
  const stateDir = join(work, 'dev-c');
  const first = agentAt(stateDir);
  const enrolled = await first.waitForMsg('enrolled');
  await first.waitForMsg(/→ online/);
  await first.stop();
  writeFileSync(join(stateDir, 'identity.json'), Buffer.alloc(512));
  const second = agentAt(stateDir);
  await second.waitForLog((l) => l.code === 'STATE_CORRUPT');
  const reenrolled = await second.waitForMsg('enrolled');
  assert.equal(reenrolled.deviceId, enrolled.deviceId);
  await second.waitForMsg(/→ online/);
  await second.stop();
  assert.ok(existsSync(join(stateDir, 'identity.json.bad')), "existsSync(join(stateDir, 'identity.json.bad'))");
});

test('corrupt keys: new keys, same serial: the device waits until an operator approves the re-key, then gets its old id back', async () => {
  const stateDir = join(work, 'dev-d');
  const first = agentAt(stateDir);
  const enrolled = await first.waitForMsg('enrolled');
  await first.stop();
  writeFileSync(join(stateDir, 'keys.json'), '{"v":1,"signPub');
  const second = agentAt(stateDir);
  await second.waitForMsg('created device key pairs');
  // The stored identity was granted to the old keys: it is dropped and the device enrolls again.
  // The fleet cannot tell a device that lost its keys from another holder of the bootstrap
  // file presenting its serial, so the new keys wait for an operator.
  const waiting = await second.waitForMsg('waiting for an operator to approve this device');
  const requestId = /tsunagu-fleet approve (d-[0-9a-f]{20})/.exec(String(waiting.message))?.[1];
  assert.ok(requestId, String(waiting.message));
  const listed = devices();
  assert.deepEqual(listed.find((d) => d.deviceId === requestId), { ...listed.find((d) => d.deviceId === requestId), status: 'pending', replaces: enrolled.deviceId });
  assert.equal(listed.find((d) => d.deviceId === enrolled.deviceId)?.status, 'active');
  const table = fleet('devices', '--dir', fleetDir);
  assert.match(table.stdout, new RegExp(`${requestId}\\s+pending \\(re-key of ${String(enrolled.deviceId)}\\)`));
  assert.equal(second.lines.some((l) => l.msg === 'enrolled'), false);

  const approved = fleet('approve', requestId, '--dir', fleetDir);
  assert.equal(approved.status, 0, approved.stderr);
  const rekeyed = await second.waitForMsg('enrolled');
  assert.equal(rekeyed.deviceId, enrolled.deviceId);
  await second.waitForMsg(/→ online/);
  await second.stop();
  assert.ok(readdirSync(stateDir).includes('keys.json.bad'), "readdirSync(stateDir).includes('keys.json.bad')");
  assert.equal(devices().filter((d) => d.deviceId === enrolled.deviceId).length, 1);
  assert.equal(devices().some((d) => d.deviceId === requestId), false);
});

test('with the broker down the device retries with back-off and enrolls once it returns', async () => {
  await broker.stop();
  const stateDir = join(work, 'dev-e');
  const agent = agentAt(stateDir);
  try {
    await agent.waitForLog((l) => l.msg === 'next enrollment attempt' && Number(l.attempt) >= 3);
    const delays = agent.lines.filter((l) => l.msg === 'next enrollment attempt').map((l) => Number(l.delayMs));
    // Full jitter under a cap of 2000 ms (the test config): every delay within [0, cap].
    assert.ok(delays.every((d) => d >= 0 && d <= 2000), `delays ${delays.join(',')}`);
  } finally {
    await broker.start();
  }
  const enrolled = await agent.waitForMsg('enrolled', 30_000);
  await agent.waitForMsg(/→ online/);
  await agent.stop();
  await waitFor('the enrolled device listed', () => devices().find((d) => d.deviceId === enrolled.deviceId));
});
