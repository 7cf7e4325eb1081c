import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BootstrapFileSchema } from '../../protocol/bootstrap.js';
import { AgentProcess, FLEET_BUNDLE } from '../support/agent-process.js';
import { freePort } from '../support/mosquitto.js';
import { waitFor } from '../support/wait-for.js';

// The product path of a fleet with no broker installed, with the shipped
// bundles: `init` without --broker, `serve` running the embedded broker,
// and an agent that speaks MQTT 3.1.1 because its bootstrap file says so.
let work: string;
let fleetDir: string;
let bootstrapPath: string;
let serve: ChildProcess | undefined;

function fleet(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [FLEET_BUNDLE, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface DeviceRow { deviceId: string; status: string; online: boolean }
function devices(): DeviceRow[] {
  const r = fleet('devices', '--dir', fleetDir, '--json');
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as DeviceRow[];
}

async function startServe(): Promise<void> {
  const child = spawn(process.execPath, [FLEET_BUNDLE, 'serve', '--dir', fleetDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  serve = child;
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`serve exited (${code})`)));
    child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('enrollment service listening')) resolve(); });
  });
}

async function stopServe(): Promise<void> {
  const child = serve;
  serve = undefined;
  if (child === undefined || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'tsunagu-e2e-embedded-'));
  fleetDir = join(work, 'fleet');
  bootstrapPath = join(work, 'bootstrap.json');
  const init = fleet('init', '--dir', fleetDir, '--fleet-id', 'box', '--listen', `127.0.0.1:${await freePort()}`, '--claim-token', 'box-token');
  assert.equal(init.status, 0, init.stderr);
  const boot = fleet('bootstrap', '--dir', fleetDir, '--out', bootstrapPath, '--claim-token', 'box-token');
  assert.equal(boot.status, 0, boot.stderr);
  await startServe();
});

after(async () => {
  await stopServe();
  rmSync(work, { recursive: true, force: true });
});

test('with the embedded broker a device enrolls over MQTT 3.1.1, answers signed commands, and its will marks it offline', async () => {
  const bootstrap = BootstrapFileSchema.parse(JSON.parse(readFileSync(bootstrapPath, 'utf8')));
  assert.equal(bootstrap.broker.protocolVersion, 4);
  const accounts = readFileSync(join(fleetDir, 'broker-accounts.json'), 'utf8');
  assert.ok(!accounts.includes(bootstrap.broker.password), 'the account file holds hashes, not passwords');

  const agent = new AgentProcess({ stateDir: join(work, 'dev-a'), bootstrapPath, serial: 'box-a' });
  try {
    const deviceId = String((await agent.waitForMsg('enrolled')).deviceId);
    await agent.waitForMsg(/→ online/);
    await waitFor('the device online and active', () => devices().find((d) => d.deviceId === deviceId && d.online && d.status === 'active'));
    const ping = fleet('send', '--dir', fleetDir, deviceId, 'ping', '--json', '--timeout', '10000');
    assert.equal(ping.status, 0, ping.stderr);
    assert.equal((JSON.parse(ping.stdout) as { ok: boolean }).ok, true);
    // The new password reaches the broker through its control topic from another process.
    const rotated = fleet('send', '--dir', fleetDir, deviceId, 'rotate-credentials', '--timeout', '10000');
    assert.equal(rotated.status, 0, rotated.stderr);
  } finally {
    await agent.stop('SIGKILL');
  }
  // The will, published by the embedded broker for the killed device.
  await waitFor('the device offline', () => devices().find((d) => !d.online));

  // A restart of serve keeps the accounts: the device comes back with its (rotated) credential, no new enrollment.
  await stopServe();
  await startServe();
  const again = new AgentProcess({ stateDir: join(work, 'dev-a'), bootstrapPath, serial: 'box-a' });
  try {
    await again.waitForMsg('identity found; skipping enrollment');
    await again.waitForMsg(/→ online/);
    assert.equal(again.lines.some((l) => l.msg === 'enrolled'), false);
    await waitFor('the device online again', () => devices().find((d) => d.online));
  } finally {
    await again.stop();
  }
});
