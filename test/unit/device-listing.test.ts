import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isTsunaguError } from '../../protocol/errors.js';
import { runDevices } from '../../provisioning/enrollment-verbs.js';
import { deviceListing } from '../../provisioning/device-listing.js';
import { createFleetDir } from '../../provisioning/fleet-dir.js';
import { deriveDeviceId, FleetDatabase } from '../../provisioning/fleet-database.js';
import { checkJsonSchema } from '../support/json-schema-check.js';

/**
 * `devices --json --keys` is how a program of one's own learns a device's
 * public keys: checked against the vector keys (whose key id is published),
 * the published JSON Schema, and the example and member table of the docs.
 */
const root = join(import.meta.dirname, '..', '..');
const vectorDevice = (JSON.parse(readFileSync(join(root, 'protocol', 'vectors', 'keys.json'), 'utf8')) as { device: Record<string, string> }).device;
const listingSchema = JSON.parse(readFileSync(join(root, 'docs', 'schemas', 'devices-listing.json'), 'utf8')) as Record<string, unknown>;
const doc = readFileSync(join(root, 'docs', 'provisioning.md'), 'utf8');
const devicesSection = doc.slice(doc.indexOf('### `tsunagu-fleet devices`'));

function databaseWithVectorDevice(): FleetDatabase {
  const database = new FleetDatabase(':memory:');
  database.upsertDevice({
    deviceId: deriveDeviceId(vectorDevice.signPublicKeyBase64!), signPublicKey: vectorDevice.signPublicKeyBase64!, boxPublicKey: vectorDevice.boxPublicKeyBase64!,
    serial: '10000000c0ffee01', model: 'Raspberry Pi 4 Model B Rev 1.4', arch: 'arm64', macs: ['dc:a6:32:01:02:03'], hostname: 'edge-01',
    status: 'active', enrolledAt: 1767225600850, now: 1767225600850,
  });
  return database;
}

test('--keys adds the signing key, its key id (protocol.md §3) and the box key; without it no key is listed', () => {
  const database = databaseWithVectorDevice();
  try {
    const [withKeys] = deviceListing(database.list(), true);
    assert.equal(withKeys?.signPublicKey, vectorDevice.signPublicKeyBase64);
    assert.equal(withKeys?.keyId, vectorDevice.keyId);
    assert.equal(withKeys?.boxPublicKey, vectorDevice.boxPublicKeyBase64);
    assert.deepEqual(checkJsonSchema(listingSchema, [withKeys]), []);
    const [plain] = deviceListing(database.list(), false);
    assert.deepEqual(Object.keys(plain!).filter((k) => /key/i.test(k)), []);
    assert.deepEqual(checkJsonSchema(listingSchema, [plain]), []);
  } finally {
    database.close();
  }
});

test('the documented members and example of devices --json --keys are what the command prints', () => {
  const database = databaseWithVectorDevice();
  try {
    const [listed] = deviceListing(database.list(), true);
    const tables = devicesSection.slice(devicesSection.indexOf('`--json` prints'), devicesSection.indexOf('$ tsunagu-fleet devices --dir ./fleet --json --keys'));
    const documented = [...tables.matchAll(/^\| (`[A-Za-z]+`(?:, `[A-Za-z]+`)*) \|/gm)].flatMap((m) => m[1]!.split(', ').map((c) => c.slice(1, -1)));
    assert.deepEqual(documented.sort(), Object.keys(listed!).sort());
    const example = JSON.parse(devicesSection.split('$ tsunagu-fleet devices --dir ./fleet --json --keys\n')[1]!.split('```')[0]!) as unknown[];
    assert.deepEqual(checkJsonSchema(listingSchema, example), []);
    assert.deepEqual(Object.keys(example[0] as object), Object.keys(listed!), 'the example lists the members in the order printed');
    assert.equal((example[0] as { keyId: string }).keyId, listed!.keyId);
  } finally {
    database.close();
  }
});

test('--keys without --json is refused: the table is for people', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-fleet-'));
  try {
    createFleetDir(dir, { fleetId: 'acme', broker: { url: 'mqtt://127.0.0.1:1', protocolVersion: 4, username: 'u', password: 'p', kind: 'embedded' }, claim: { mode: 'approve' } });
    assert.throws(() => runDevices({ dir, keys: true }), (e) => isTsunaguError(e, 'CONFIG'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
