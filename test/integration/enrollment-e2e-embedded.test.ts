import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BootstrapFileSchema } from '../../protocol/bootstrap.js';
import { AgentProcess } from '../support/agent-process.js';
import { fleetCliSync, startServe, stopServe } from '../support/deploy-cli.js';
import { freePort } from '../support/mosquitto.js';
import { waitFor } from '../support/wait-for.js';

// The product path of a fleet with no broker installed, with the shipped
// bundles: `init` without --broker, `serve` running the embedded broker,
// and an agent that speaks MQTT 3.1.1 because its bootstrap file says so.
let work: string;
let fleetDir: string;
let bootstrapPath: string;
let serve: ChildProcess | undefined;

interface DeviceRow { deviceId: string; status: string; online: boolean }
function devices(): DeviceRow[] {
  const r = fleet('devices', '--dir', fleetDir, '--json');
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as DeviceRow[];
}

const fleet = fleetCliSync;

async function startFleetServe(): Promise<void> {
  serve = await startServe(fleetDir);
}

async function stopFleetServe(): Promise<void> {
  const child = serve;
  serve = undefined;
  await stopServe(child);
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'tsunagu-e2e-embedded-'));
  fleetDir = join(work, 'fleet');
  bootstrapPath = join(work, 'bootstrap.json');
  const init = fleet('init', '--dir', fleetDir, '--fleet-id', 'box', '--listen', `127.0.0.1:${await freePort()}`, '--claim-token', 'box-token');
  assert.equal(init.status, 0, init.stderr);
  const boot = fleet('bootstrap', '--dir', fleetDir, '--out', bootstrapPath, '--claim-token', 'box-token');
  assert.equal(boot.status, 0, boot.stderr);
  await startFleetServe();
});

after(async () => {
  await stopFleetServe();
  rmSync(work, { recursive: true, force: true });
});

test('with the embedded broker a device enrolls over MQTT 3.1.1, answers signed commands, and its will marks it offline', async () => {
  const bootstrap = BootstrapFileSchema.parse(JSON.parse(readFileSync(bootstrapPath, 'utf8')));
  assert.equal(bootstrap.broker.protocolVersion, 4);
  const accounts = readFileSync(join(fleetDir, 'broker-accounts.json'), 'utf8');
  assert.ok(!accounts.includes(bootstrap.broker.password), 'the account file holds hashes, not passwords');

  const agent = new AgentProcess({ stateDir: join(work, 'dev-a'), bootstrapPath, serial: 'box-a' });
  try {
    const deviceId = await agent.enrolledAndOnline();
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
  await stopFleetServe();
  await startFleetServe();
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
