import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AgentProcess, FLEET_BUNDLE } from '../support/agent-process.js';
import { startMosquitto, type TestBroker } from '../support/mosquitto.js';

// The whole product path with the shipped bundles: fleet CLI init and
// bootstrap, the enrollment service as its own process, and an agent that
// has nothing but the bootstrap file.
let broker: TestBroker;
let work: string;
let fleetDir: string;
let bootstrapPath: string;
let serve: ChildProcess | undefined;

function fleet(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [FLEET_BUNDLE, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface DeviceRow { deviceId: string; status: string; online: boolean; serial: string }
function devices(): DeviceRow[] {
  const r = fleet('devices', '--dir', fleetDir, '--json');
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as DeviceRow[];
}

async function eventually<T>(probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
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
  serve = spawn(process.execPath, [FLEET_BUNDLE, 'serve', '--dir', fleetDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => {
    serve!.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('enrollment service listening')) resolve(); });
  });
});

after(async () => {
  serve?.kill('SIGTERM');
  await broker.close();
  rmSync(work, { recursive: true, force: true });
});

test('a device with only a bootstrap file enrolls, comes online, and a restart skips enrollment', async () => {
  const stateDir = join(work, 'dev-a');
  const agent = new AgentProcess({ stateDir, bootstrapPath, extraArgs: [] });
  const enrolled = await agent.waitForMsg('enrolled');
  await agent.waitForMsg(/link connecting → online/);
  const deviceId = String(enrolled.deviceId);
  const row = await eventually(() => devices().find((d) => d.deviceId === deviceId && d.online));
  assert.equal(row.status, 'active');
  // Identity and keys are the owner's alone.
  for (const name of ['keys.json', 'identity.json', 'bootstrap.json']) {
    const mode = spawnSync('stat', ['-c', '%a', join(stateDir, name)], { encoding: 'utf8' }).stdout.trim();
    assert.equal(mode, '600', `${name} mode`);
  }
  // A clean stop marks the device offline (retained), seen by the service.
  assert.equal(await agent.stop(), 0);
  await eventually(() => devices().find((d) => d.deviceId === deviceId && !d.online));

  const again = new AgentProcess({ stateDir, bootstrapPath });
  await again.waitForMsg('identity found; skipping enrollment');
  await again.waitForMsg(/→ online/);
  assert.equal(again.lines.some((l) => l.msg === 'enrolled'), false);
  await eventually(() => devices().find((d) => d.deviceId === deviceId && d.online));
  // SIGKILL: the broker publishes the last will.
  await again.stop('SIGKILL');
  await eventually(() => devices().find((d) => d.deviceId === deviceId && !d.online));
  assert.equal(devices().filter((d) => d.deviceId === deviceId).length, 1);
});

test('power lost after the reply but before it was stored: the device enrolls again to the same id', async () => {
  const stateDir = join(work, 'dev-b');
  const first = new AgentProcess({ stateDir, bootstrapPath });
  const enrolled = await first.waitForMsg('enrolled');
  await first.stop('SIGKILL');
  // Equivalent on disk to a cut between receiving the grant and storing it: keys exist, identity does not.
  rmSync(join(stateDir, 'identity.json'), { force: true });
  const second = new AgentProcess({ stateDir, bootstrapPath });
  const reenrolled = await second.waitForMsg('enrolled');
  assert.equal(reenrolled.deviceId, enrolled.deviceId);
  await second.waitForMsg(/→ online/);
  await second.stop();
  assert.equal(devices().filter((d) => d.deviceId === enrolled.deviceId).length, 1);
});

test('a corrupt identity file is moved aside and the device recovers without a crash loop', async () => {
  const stateDir = join(work, 'dev-c');
  const first = new AgentProcess({ stateDir, bootstrapPath });
  const enrolled = await first.waitForMsg('enrolled');
  await first.waitForMsg(/→ online/);
  await first.stop();
  writeFileSync(join(stateDir, 'identity.json'), Buffer.alloc(512));
  const second = new AgentProcess({ stateDir, bootstrapPath });
  await second.waitForLog((l) => l.code === 'STATE_CORRUPT');
  const reenrolled = await second.waitForMsg('enrolled');
  assert.equal(reenrolled.deviceId, enrolled.deviceId);
  await second.waitForMsg(/→ online/);
  await second.stop();
  assert.ok(existsSync(join(stateDir, 'identity.json.bad')));
});

test('corrupt keys: new keys, same serial, the fleet re-keys the same device id', async () => {
  const stateDir = join(work, 'dev-d');
  const first = new AgentProcess({ stateDir, bootstrapPath });
  const enrolled = await first.waitForMsg('enrolled');
  await first.stop();
  writeFileSync(join(stateDir, 'keys.json'), '{"v":1,"signPub');
  const second = new AgentProcess({ stateDir, bootstrapPath });
  await second.waitForMsg('created device key pairs');
  // The stored identity was granted to the old keys: it is dropped and the device enrolls again.
  const rekeyed = await second.waitForMsg('enrolled');
  assert.equal(rekeyed.deviceId, enrolled.deviceId);
  await second.waitForMsg(/→ online/);
  await second.stop();
  assert.ok(readdirSync(stateDir).includes('keys.json.bad'));
  assert.equal(devices().filter((d) => d.deviceId === enrolled.deviceId).length, 1);
});

test('with the broker down the device retries with back-off and enrolls once it returns', async () => {
  await broker.stop();
  const stateDir = join(work, 'dev-e');
  const agent = new AgentProcess({ stateDir, bootstrapPath });
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
  await eventually(() => devices().find((d) => d.deviceId === enrolled.deviceId));
});
