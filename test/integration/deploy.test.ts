import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { deviceFacts } from '../../agent/enrollment/device-facts.js';
import { enroll } from '../../agent/enrollment/enroller.js';
import { silentLogger } from '../../common/logger.js';
import { fromBase64, fromUtf8 } from '../../protocol/bytes.js';
import { DesiredDataSchema, RegistryCredentialsSchema } from '../../protocol/desired.js';
import { defaultEd25519 } from '../../protocol/ed25519.js';
import type { EnrollGrant } from '../../protocol/enrollment.js';
import type { DeviceEventOf } from '../../protocol/events/device-events.js';
import { decodeEnvelope, verifyEnvelope } from '../../protocol/envelope.js';
import { generateKeyPairs, keyId, type KeyPairs } from '../../protocol/keys.js';
import { openSealed } from '../../protocol/seal.js';
import { deviceTopic } from '../../protocol/topics.js';
import { FleetDatabase } from '../../provisioning/fleet-database.js';
import { fleetCli, inventory, jsonLines, reported } from '../support/deploy-cli.js';
import type { TestFleet } from '../support/fleet.js';
import type { TestBroker } from '../support/mosquitto.js';
import { connectAs, retainedUnderDevice } from '../support/mqtt-probe.js';
import { waitFor } from '../support/wait-for.js';
import { closeFleetWorld, startFleetWorld } from '../support/fleet-world.js';

// `tsunagu-fleet deploy` as shipped (the bundle, a child process with real
// exit codes) against a real Mosquitto and the real enrollment service. The
// devices are enrolled through the enrollment protocol; what they report is
// published with their own credentials, so the broker's ACLs apply.
const ed = defaultEd25519();
let broker: TestBroker;
let tf: TestFleet;
let work: string;
const open: MqttClient[] = [];

interface Device { grant: EnrollGrant; keys: KeyPairs; client: MqttClient }
const devices: Record<string, Device> = {};

async function enrollDevice(name: string): Promise<Device> {
  const keys = generateKeyPairs();
  const grant = await enroll({
    bootstrap: tf.bootstrap, keys, ed, logger: silentLogger(), signal: AbortSignal.timeout(20_000),
    claim: { ...deviceFacts({ serial: `serial-${name}` }), claimToken: tf.claimToken }, backoff: { baseMs: 100, capMs: 500 },
  });
  const client = await connectAs(broker.url, grant.username, grant.password, grant.clientId);
  open.push(client);
  return { grant, keys, client };
}

function file(name: string, text: string): string {
  const path = join(work, name);
  writeFileSync(path, text);
  return path;
}

/** Read a device's retained desired message as another fleet client would (a fresh connection). */
async function retainedDesired(deviceId: string): Promise<Buffer | undefined> {
  const observer = await connectAs(broker.url, tf.fleet.config.broker.username, tf.fleet.config.broker.password);
  try {
    // A retained marker closes the list of what the broker holds: no wait that a slow broker would outlast.
    const held = (await retainedUnderDevice(observer, deviceId)).find((m) => m.topic === deviceTopic(deviceId, 'desired'));
    return held === undefined ? undefined : Buffer.from(held.payload);
  } finally {
    await observer.endAsync(true);
  }
}

function verifiedDesired(bytes: Buffer): ReturnType<typeof verifyEnvelope> {
  const limits = { maxBytes: 512 * 1024, maxDepth: 32 };
  const pk = tf.fleet.keys.signPublicKey;
  return verifyEnvelope(decodeEnvelope(new Uint8Array(bytes), limits), (kid) => (kid === keyId(pk) ? pk : undefined), ed, limits);
}

/**
 * The device's side of one rollout, with its own credential: on the desired
 * message it receives, run `script` with the version it carries.
 */
async function onDesired(device: Device, script: (version: number) => Promise<void>): Promise<() => Promise<void>> {
  const topic = deviceTopic(device.grant.deviceId, 'desired');
  const handler = (t: string, payload: Buffer): void => {
    if (t !== topic || payload.length === 0) return;
    const data = DesiredDataSchema.parse(verifiedDesired(payload).data);
    void script(data.version);
  };
  device.client.on('message', handler);
  await device.client.subscribeAsync(topic, { qos: 1 });
  return async () => {
    device.client.removeListener('message', handler);
    await device.client.unsubscribeAsync(topic);
  };
}

async function publishFrom(device: Device, kind: 'state' | 'events' | 'inventory', payload: string, retain: boolean): Promise<void> {
  await device.client.publishAsync(deviceTopic(device.grant.deviceId, kind), payload, { qos: 1, retain });
}

const COMPOSE = `
services:
  web:
    image: registry.example.com/web:1.2
    environment:
      MODE: prod
      DB_PASSWORD: "hunter2-inline-secret"
    x-tsunagu:
      secrets: [DB_PASSWORD, API_TOKEN]
  cache:
    image: redis:7
`;

before(async () => {
  ({ broker, tf, work } = await startFleetWorld('tsunagu-deploy-'));
  for (const name of ['a', 'b', 'c']) devices[name] = await enrollDevice(name);
});

after(async () => {
  for (const c of open) await c.endAsync(true).catch(() => undefined);
  await closeFleetWorld({ broker, tf, work });
});

test('the retained desired message verifies with the fleet key, carries the version and opens to the secrets with the device key only', async () => {
  const a = devices.a!;
  const envFile = file('prod.env', '# secrets\nAPI_TOKEN="tok-from-env-file"\n');
  const r = await fleetCli(['deploy', a.grant.deviceId, file('compose.yaml', COMPOSE), '--dir', tf.fleet.dir, '--env-file', envFile,
    '--registry-auth', 'registry.example.com=ci-bot:reg-pa55:word', '--no-wait', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const [published, ...rest] = jsonLines(r.stdout);
  assert.equal(published?.type, 'published');
  assert.equal(rest.length, 1);
  const version = published.version as number;

  const bytes = await retainedDesired(a.grant.deviceId);
  assert.ok(bytes !== undefined, 'a retained desired message');
  const payload = verifiedDesired(bytes);
  assert.equal(payload.typ, 'desired');
  assert.equal(payload.to, a.grant.deviceId);
  assert.ok(payload.exp - payload.iat >= 9 * 365 * 24 * 3600 * 1000, 'valid for years: a retained state outlives a device\'s absence');
  const data = DesiredDataSchema.parse(payload.data);
  assert.equal(data.version, version);
  assert.ok(version >= Date.now() - 60_000, 'the signer counter (ms floor)');

  const wire = bytes.toString('utf8') + fromUtf8(fromBase64((JSON.parse(bytes.toString('utf8')) as { body: string }).body, 'body'));
  for (const secret of ['hunter2-inline-secret', 'tok-from-env-file', 'reg-pa55:word', 'ci-bot', 'x-tsunagu']) {
    assert.ok(!wire.includes(secret), `"${secret}" must not be on the broker in clear`);
  }
  assert.deepEqual(data.compose, {
    services: { web: { image: 'registry.example.com/web:1.2', environment: { MODE: 'prod' } }, cache: { image: 'redis:7' } },
  });
  const unseal = (b64: string): string => fromUtf8(openSealed(fromBase64(b64, 'sealed'), a.keys.boxSecretKey));
  assert.deepEqual(Object.keys(data.sealed?.environment?.web ?? {}).sort(), ['API_TOKEN', 'DB_PASSWORD']);
  assert.equal(unseal(data.sealed!.environment!.web!.DB_PASSWORD!), 'hunter2-inline-secret');
  assert.equal(unseal(data.sealed!.environment!.web!.API_TOKEN!), 'tok-from-env-file');
  assert.deepEqual(RegistryCredentialsSchema.parse(JSON.parse(unseal(data.sealed!.registries!))), { 'registry.example.com': { username: 'ci-bot', password: 'reg-pa55:word' } });
  assert.throws(() => openSealed(fromBase64(data.sealed!.registries!, 'sealed'), devices.b!.keys.boxSecretKey), /SEAL_OPEN_FAILED|could not be opened/);

  // A second deployment gets a higher version, with registry credentials from the environment.
  const again = await fleetCli(['deploy', a.grant.deviceId, file('plain.yaml', 'services:\n  web:\n    image: nginx\n'), '--dir', tf.fleet.dir, '--no-wait', '--json'],
    { TSUNAGU_REGISTRY_AUTH: 'r1.example=u1:p1 r2.example=u2:p2' });
  assert.equal(again.status, 0, again.stderr);
  const next = DesiredDataSchema.parse(verifiedDesired((await retainedDesired(a.grant.deviceId))!).data);
  assert.ok(next.version > version, 'next.version > version');
  assert.deepEqual(Object.keys(RegistryCredentialsSchema.parse(JSON.parse(unseal(next.sealed!.registries!)))), ['r1.example', 'r2.example']);
});

test('a document the device would refuse is refused at deploy time, with its field path, and nothing is sent', async () => {
  const b = devices.b!;
  const cases: [string, RegExp][] = [
    ['services:\n  web:\n    image: nginx\n    build: .\n', /UNSUPPORTED: services\.web\.build: not supported/],
    ['services:\n  web:\n    image: nginx\n    security_opt: [seccomp=unconfined]\n', /UNSUPPORTED: services\.web\.security_opt: not supported/],
    ['services:\n  web:\n    image: nginx\nsecrets:\n  db: { file: ./db }\n', /UNSUPPORTED: secrets: not supported/],
    ['services:\n  web:\n    image: nginx\n    depends_on: [db]\n', /SCHEMA: services\.web\.depends_on\.db: no such service/],
    ['services:\n  web:\n    image: nginx\n    x-tsunagu: { secrets: [NOPE] }\n', /SCHEMA: services\.web\.x-tsunagu\.secrets: NOPE has no value/],
  ];
  for (const [yaml, message] of cases) {
    const r = await fleetCli(['deploy', b.grant.deviceId, file('refused.yaml', yaml), '--dir', tf.fleet.dir, '--no-wait']);
    assert.notEqual(r.status, 0, yaml);
    assert.match(r.stderr, message);
    assert.equal(r.stdout, '');
  }
  const bad = await fleetCli(['deploy', '--selector', 'gpu', file('ok.yaml', 'services:\n  web:\n    image: nginx\n'), '--dir', tf.fleet.dir]);
  assert.equal(bad.status, 78);
  assert.match(bad.stderr, /CONFIG: bad selector "gpu": "gpu" has no "="/);
  assert.equal(await retainedDesired(b.grant.deviceId), undefined, 'nothing reached the broker for b');
});

test('following the rollout: progress and events shown, exit 0 once the device applied the version', async () => {
  const a = devices.a!;
  const stop = await onDesired(a, async (version) => {
    await publishFrom(a, 'state', reported({ desiredVersion: version, appliedVersion: null, status: 'applying' }), true);
    for (const current of [0, 50, 100]) {
      const progress: DeviceEventOf<'service-pull-progress'> = { v: 1, at: Date.now(), type: 'service-pull-progress', service: 'web', image: 'nginx', currentBytes: current * 1048576, totalBytes: 100 * 1048576 };
      await publishFrom(a, 'events', JSON.stringify(progress), false);
    }
    // Typed as the agent's: the fleet reads an event by its protocol schema.
    const started: DeviceEventOf<'service-started'> = { v: 1, at: Date.now(), type: 'service-started', service: 'web', containerId: 'c1' };
    await publishFrom(a, 'events', JSON.stringify(started), false);
    await publishFrom(a, 'state', reported({ desiredVersion: version, appliedVersion: version, status: 'synced' }), true);
  });
  try {
    const json = await fleetCli(['deploy', a.grant.deviceId, file('web.yaml', 'services:\n  web:\n    image: nginx\n'), '--dir', tf.fleet.dir, '--json', '--timeout', '20']);
    assert.equal(json.status, 0, json.stderr + json.stdout);
    const lines = jsonLines(json.stdout);
    const version = lines[0]!.version;
    assert.deepEqual(lines.filter((l) => l.type === 'event').map((l) => [l.event, l.currentBytes ?? null]),
      [['service-pull-progress', 0], ['service-pull-progress', 50 * 1048576], ['service-pull-progress', 100 * 1048576], ['service-started', null]]);
    assert.deepEqual(lines.at(-1), { type: 'result', deviceId: a.grant.deviceId, version, result: 'applied', status: 'synced', appliedVersion: version, error: null, services: [] });

    const text = await fleetCli(['deploy', a.grant.deviceId, file('web.yaml', 'services:\n  web:\n    image: nginx\n'), '--dir', tf.fleet.dir, '--timeout', '20']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /web nginx: pulling 50% \(50\.0 MiB of 100\.0 MiB\)/);
    assert.match(text.stdout, /applied \(synced\)/);
    assert.ok(!text.stdout.includes('\r'), 'no progress bar when stdout is not a terminal');
  } finally {
    await stop();
  }
});

test('exit 2 with the device\'s reasons when it refuses this version; an old failure does not end the wait', async () => {
  const a = devices.a!;
  const stop = await onDesired(a, async (version) => {
    await publishFrom(a, 'state', reported({ desiredVersion: version - 1, appliedVersion: null, status: 'failed', error: { code: 'PULL_FAILED', message: 'old failure' } }), true);
    await new Promise((r) => setTimeout(r, 300));
    await publishFrom(a, 'state', reported({
      desiredVersion: version, appliedVersion: version - 5, status: 'refused',
      error: { code: 'UNSUPPORTED', message: 'services.web: device lacks /dev/ttyUSB0', services: { web: 'requires /dev/ttyUSB0' } },
    }), true);
  });
  try {
    const r = await fleetCli(['deploy', a.grant.deviceId, file('web.yaml', 'services:\n  web:\n    image: nginx\n'), '--dir', tf.fleet.dir, '--timeout', '20']);
    assert.equal(r.status, 2, r.stderr + r.stdout);
    assert.match(r.stdout, /failed \(refused\)\n\s+UNSUPPORTED: services\.web: device lacks \/dev\/ttyUSB0\n\s+web: requires \/dev\/ttyUSB0/);
    assert.ok(!r.stdout.includes('old failure'), "!r.stdout.includes('old failure')");
  } finally {
    await stop();
  }
});

test('exit 3 when the device does not finish within --timeout', async () => {
  const a = devices.a!;
  const stop = await onDesired(a, async (version) => {
    await publishFrom(a, 'state', reported({ desiredVersion: version, appliedVersion: null, status: 'applying' }), true);
  });
  try {
    const started = Date.now();
    const r = await fleetCli(['deploy', a.grant.deviceId, file('web.yaml', 'services:\n  web:\n    image: nginx\n'), '--dir', tf.fleet.dir, '--timeout', '1.5', '--json']);
    assert.equal(r.status, 3, r.stderr + r.stdout);
    assert.ok(Date.now() - started >= 1500, 'Date.now() - started >= 1500');
    const result = jsonLines(r.stdout).at(-1)!;
    assert.equal(result.result, 'timeout');
    assert.equal(result.status, 'applying');
  } finally {
    await stop();
  }
});

test('--selector deploys to exactly the matching devices, with labels from serve or from the retained inventories', async () => {
  const { a, b, c } = devices as Record<'a' | 'b' | 'c', Device>;
  await publishFrom(a, 'inventory', inventory({ arch: 'arm64', gpu: 'true' }), true);
  await publishFrom(b, 'inventory', inventory({ arch: 'arm64', gpu: 'false' }), true);
  const database = tf.server!.database;
  await waitFor('serve to store both inventories\' labels', () => [a, b].every((d) => Object.keys(database.byId(d.grant.deviceId)!.labels).length > 0), 5_000);
  assert.deepEqual(database.byId(a.grant.deviceId)!.labels, { arch: 'arm64', gpu: 'true' }, 'serve stored the labels');
  const listed = await fleetCli(['devices', '--dir', tf.fleet.dir, '--labels']);
  assert.match(listed.stdout, new RegExp(`${a.grant.deviceId} .* arch=arm64,gpu=true`));

  // c's inventory arrives while serve is down: the fleet database has no labels for it.
  await tf.server!.stop();
  await publishFrom(c, 'inventory', inventory({ arch: 'arm64', gpu: 'true' }), true);
  const offline = new FleetDatabase(tf.fleet.databasePath);
  assert.deepEqual(offline.byId(c.grant.deviceId)!.labels, {});
  offline.close();

  const before = await retainedDesired(b.grant.deviceId);
  const stopA = await onDesired(a, async (v) => { await publishFrom(a, 'state', reported({ desiredVersion: v, appliedVersion: v, status: 'synced' }), true); });
  const stopC = await onDesired(c, async (v) => { await publishFrom(c, 'state', reported({ desiredVersion: v, appliedVersion: v - 1, status: 'failed', error: { code: 'PULL_FAILED', message: 'no route to registry' } }), true); });
  try {
    const r = await fleetCli(['deploy', '--selector', 'gpu=true,arch=arm64', file('gpu.yaml', 'services:\n  infer:\n    image: infer:1\n'), '--dir', tf.fleet.dir, '--timeout', '20']);
    assert.equal(r.status, 2, r.stderr + r.stdout);
    const rows = r.stdout.trim().split('\n').filter((l) => /^d-\S+\s{2,}\d+\s{2,}/.test(l)).map((l) => l.split(/\s{2,}/).slice(0, 4));
    const versionA = DesiredDataSchema.parse(verifiedDesired((await retainedDesired(a.grant.deviceId))!).data).version;
    const versionC = DesiredDataSchema.parse(verifiedDesired((await retainedDesired(c.grant.deviceId))!).data).version;
    assert.deepEqual(rows.sort(), [
      [a.grant.deviceId, String(versionA), 'applied', 'synced'],
      [c.grant.deviceId, String(versionC), 'failed', 'failed'],
    ].sort());
    assert.match(r.stdout, /PULL_FAILED: no route to registry/);
    assert.deepEqual(await retainedDesired(b.grant.deviceId), before, 'b does not match and got nothing');

    const none = await fleetCli(['deploy', '--selector', 'gpu=maybe', file('gpu.yaml', 'services:\n  infer:\n    image: infer:1\n'), '--dir', tf.fleet.dir, '--no-wait']);
    assert.equal(none.status, 78);
    assert.match(none.stderr, /no active device has the labels gpu=maybe/);
  } finally {
    await stopA();
    await stopC();
  }
});
