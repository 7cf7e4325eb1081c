import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { deviceTopic } from '../../protocol/topics.js';
import { FleetDatabase } from '../../provisioning/fleet-database.js';
import { AgentProcess } from '../support/agent-process.js';
import { freePort, startMosquitto, type TestBroker } from '../support/mosquitto.js';
import { connectAs, retainedUnderDevice } from '../support/mqtt-probe.js';
import { fleetCli, startServe, stopServe } from '../support/deploy-cli.js';

// `tsunagu-fleet revoke` with the shipped bundles, on both brokers: the
// device's live connection is closed at once, its credential no longer
// connects, nothing it left retained remains, its key cannot enroll again,
// and the audit log says so.
let broker: TestBroker;
let work: string;

interface Run { status: number | null; stdout: string; stderr: string; endedAt: number }

/** The fleet CLI, asynchronously: the agents' log lines keep flowing in meanwhile. */
async function fleet(...args: string[]): Promise<Run> {
  const r = await fleetCli(args);
  return { ...r, endedAt: Date.now() };
}

async function ok(...args: string[]): Promise<Run> {
  const r = await fleet(...args);
  assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
  return r;
}

interface FleetConfigFile { broker: { url: string; username: string; password: string; protocolVersion: 4 | 5 } }

function fleetConfig(fleetDir: string): FleetConfigFile {
  return JSON.parse(readFileSync(join(fleetDir, 'fleet.json'), 'utf8')) as FleetConfigFile;
}

function auditOf(fleetDir: string, deviceId: string): { event: string; message: string }[] {
  const database = new FleetDatabase(join(fleetDir, 'registry.db'));
  try {
    return database.auditLog(1000).filter((e) => e.deviceId === deviceId);
  } finally {
    database.close();
  }
}

function timeOf(line: Record<string, unknown>): number {
  return Date.parse(String(line.time));
}

/**
 * Enroll one device, let it leave retained messages (its own, and a desired
 * state the fleet publishes), revoke it, and check every promise of `revoke`.
 */
async function revokeAndCheck(fleetDir: string, bootstrapPath: string, name: string): Promise<void> {
  const config = fleetConfig(fleetDir);
  const stateDir = join(work, name);
  const agent = new AgentProcess({ stateDir, bootstrapPath, serial: `revoke-${name}` });
  const admin = await connectAs(config.broker.url, config.broker.username, config.broker.password, undefined, config.broker.protocolVersion);
  try {
    const deviceId = await agent.enrolledAndOnline();
    await admin.publishAsync(deviceTopic(deviceId, 'desired'), 'left by the fleet', { qos: 1, retain: true });
    // Its own retained status is there before the revocation.
    const before = await retainedUnderDevice(admin, deviceId);
    assert.ok(before.some((m) => m.topic === deviceTopic(deviceId, 'status') && m.payload.includes('"online"')), JSON.stringify(before));
    assert.ok(before.some((m) => m.topic === deviceTopic(deviceId, 'desired')), "before.some((m) => m.topic === deviceTopic(deviceId, 'desired'))");
    const { password } = (JSON.parse(readFileSync(join(stateDir, 'identity.json'), 'utf8')) as { grant: { password: string } }).grant;

    const revoked = await ok('revoke', '--dir', fleetDir, deviceId, '--reason', 'stolen in test');
    assert.match(revoked.stdout, new RegExp(`revoked ${deviceId}: its broker account is deleted`));

    // The live connection was closed by the time revoke returned (within a second of it, by the agent's clock).
    const lost = await agent.waitForLog((l) => l.msg === 'link online → offline');
    assert.ok(timeOf(lost) <= revoked.endedAt + 1000, `link lost at ${String(lost.time)}, revoke ended at ${new Date(revoked.endedAt).toISOString()}`);
    // The agent finds its credential refused, tries to enroll again with its key, and is refused for good.
    const refusal = await agent.waitForLog((l) => l.msg === 'enrollment refused', 30_000);
    assert.equal(refusal.code, 'DEVICE_REVOKED');

    // Its credential connects no more, so it cannot publish either.
    await assert.rejects(connectAs(config.broker.url, deviceId, password, deviceId, config.broker.protocolVersion));
    // Nothing it (or the fleet for it) left retained remains.
    assert.deepEqual(await retainedUnderDevice(admin, deviceId), []);

    const audit = auditOf(fleetDir, deviceId);
    assert.ok(audit.some((e) => e.event === 'revoked' && e.message.includes('stolen in test')), JSON.stringify(audit));
    assert.ok(audit.some((e) => e.event === 'refused' && e.message.includes('revoked')), JSON.stringify(audit));
    const listed = JSON.parse((await ok('devices', '--dir', fleetDir, '--json')).stdout) as { deviceId: string; status: string }[];
    assert.equal(listed.find((d) => d.deviceId === deviceId)?.status, 'revoked');
    // Commands to it are refused on the fleet side.
    const send = await fleet('send', '--dir', fleetDir, deviceId, 'ping', '--timeout', '2000');
    assert.equal(send.status, 78);
  } finally {
    await admin.endAsync(true);
    await agent.stop();
  }
}

before(async () => {
  broker = await startMosquitto();
  work = mkdtempSync(join(tmpdir(), 'tsunagu-revoke-'));
});

after(async () => {
  await broker.close();
  rmSync(work, { recursive: true, force: true });
});

/** A fleet `fleetId` on the test's Mosquitto, made with the CLI (`init`, `bootstrap`) in `<work>/fleet-<name>`, and its bootstrap file. */
async function mosquittoFleet(name: string, fleetId: string): Promise<{ fleetDir: string; bootstrapPath: string }> {
  const fleetDir = join(work, `fleet-${name}`);
  const bootstrapPath = join(work, `bootstrap-${name}.json`);
  await ok('init', '--dir', fleetDir, '--fleet-id', fleetId, '--broker', broker.url, '--admin-user', broker.adminUser, '--admin-password', broker.adminPassword, '--claim-token', `${fleetId}-token`);
  await ok('bootstrap', '--dir', fleetDir, '--out', bootstrapPath, '--claim-token', `${fleetId}-token`);
  return { fleetDir, bootstrapPath };
}

test('Mosquitto: revoke cuts the device off at once, clears its retained messages, and refuses its key', async () => {
  const { fleetDir, bootstrapPath } = await mosquittoFleet('m', 'rv');
  const serve = await startServe(fleetDir);
  try {
    await revokeAndCheck(fleetDir, bootstrapPath, 'dev-m');
  } finally {
    await stopServe(serve);
  }
});

test('embedded broker: revoke through serve cuts the device off the same way; without serve it edits the account file', async () => {
  const fleetDir = join(work, 'fleet-e');
  const bootstrapPath = join(work, 'bootstrap-e.json');
  await ok('init', '--dir', fleetDir, '--fleet-id', 'rve', '--listen', `127.0.0.1:${await freePort()}`, '--claim-token', 'rve-token');
  await ok('bootstrap', '--dir', fleetDir, '--out', bootstrapPath, '--claim-token', 'rve-token');
  let serve = await startServe(fleetDir);
  try {
    await revokeAndCheck(fleetDir, bootstrapPath, 'dev-e');

    // A second device, revoked while serve (and so the broker) is down.
    const stateDir = join(work, 'dev-e2');
    const agent = new AgentProcess({ stateDir, bootstrapPath, serial: 'revoke-dev-e2' });
    try {
      const deviceId = await agent.enrolledAndOnline();
      await stopServe(serve);
      const revoked = await ok('revoke', '--dir', fleetDir, deviceId);
      assert.match(revoked.stdout, /account file/);
      assert.equal(readFileSync(join(fleetDir, 'broker-accounts.json'), 'utf8').includes(`"${deviceId}"`), false);
      serve = await startServe(fleetDir);
      // Back up, the broker no longer knows its account, and the service refuses its key.
      const refusal = await agent.waitForLog((l) => l.msg === 'enrollment refused', 30_000);
      assert.equal(refusal.code, 'DEVICE_REVOKED');
      assert.ok(auditOf(fleetDir, deviceId).some((e) => e.event === 'revoked' && e.message.includes('account file')), "auditOf(fleetDir, deviceId).some((e) => e.event === 'revoked' && e.message.includes('account file'))");
    } finally {
      await agent.stop();
    }
  } finally {
    await stopServe(serve);
  }
});

test('a cloned image (same serial, new key) approved with --as-new joins under its own id; the original keeps working', async () => {
  const { fleetDir, bootstrapPath } = await mosquittoFleet('c', 'rvc');
  const serve = await startServe(fleetDir);
  const original = new AgentProcess({ stateDir: join(work, 'clone-a'), bootstrapPath, serial: 'machine-id-copied' });
  let clone: AgentProcess | undefined;
  try {
    const originalId = String((await original.waitForMsg('enrolled')).deviceId);
    await original.waitForMsg(/→ online/);
    // Started once the original is in: the first of two to enroll is the original.
    clone = new AgentProcess({ stateDir: join(work, 'clone-b'), bootstrapPath, serial: 'machine-id-copied' });
    const waiting = await clone.waitForLog((l) => l.msg === 'waiting for an operator to approve this device', 30_000);
    const cloneId = /approve (d-[0-9a-f]{20})/.exec(String(waiting.message))?.[1];
    assert.ok(cloneId !== undefined && cloneId !== originalId, String(waiting.message));
    const approved = await ok('approve', '--dir', fleetDir, '--as-new', cloneId);
    assert.match(approved.stdout, /as a new device/);
    assert.equal(String((await clone.waitForMsg('enrolled', 30_000)).deviceId), cloneId);
    await clone.waitForMsg(/→ online/);
    const listed = JSON.parse((await ok('devices', '--dir', fleetDir, '--json')).stdout) as { deviceId: string; status: string; online: boolean }[];
    assert.deepEqual(listed.filter((d) => d.status === 'active').map((d) => d.deviceId).sort(), [cloneId, originalId].sort());
    // Both answer commands under their own ids; the original never lost its link.
    for (const id of [originalId, cloneId]) await ok('send', '--dir', fleetDir, id, 'ping', '--timeout', '10000');
    assert.equal(original.lines.filter((l) => l.msg === 'link online → offline').length, 0);
  } finally {
    await clone?.stop();
    await original.stop();
    await stopServe(serve);
  }
});
