import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import nacl from 'tweetnacl';
import { tweetnaclEd25519 } from '../../protocol/ed25519.js';
import { keyId } from '../../protocol/keys.js';
import { runInit, type InitOptions } from '../../provisioning/enrollment-verbs.js';
import { loadFleetDir } from '../../provisioning/fleet-dir.js';
import { FleetSigner } from '../../provisioning/fleet-signer.js';
import { checkJsonSchema } from '../support/json-schema-check.js';

/**
 * docs/provisioning.md documents the fleet directory's files for programs
 * other than tsunagu-fleet: the members it lists must be the members the
 * code knows (its JSON Schema), and what `init` writes must hold only those.
 */
const root = join(import.meta.dirname, '..', '..');
const doc = readFileSync(join(root, 'docs', 'provisioning.md'), 'utf8');
const section = doc.slice(doc.indexOf("### The fleet directory's files"), doc.indexOf('### Claim modes'));
const schema = (file: string): Record<string, unknown> => JSON.parse(readFileSync(join(root, 'docs', 'schemas', file), 'utf8')) as Record<string, unknown>;

/** The member paths of the table that follows `**\`<file>\`**` in the section. */
function documentedMembers(file: string): string[] {
  const table = section.split(`**\`${file}\`**`)[1]!.split('\n\n')[1]!;
  return [...table.matchAll(/^\| `([A-Za-z0-9.]+)` \|/gm)].map((m) => m[1]!).sort();
}

/** Leaf member paths of a JSON Schema (objects descended, union branches merged). */
function schemaMembers(s: Record<string, unknown>, prefix = ''): string[] {
  const branches = [s, ...((s.anyOf ?? s.oneOf ?? []) as Record<string, unknown>[])];
  const paths = new Set<string>();
  for (const branch of branches) {
    for (const [name, child] of Object.entries((branch.properties ?? {}) as Record<string, Record<string, unknown>>)) {
      const nested = schemaMembers(child, `${prefix}${name}.`);
      if (nested.length === 0) paths.add(`${prefix}${name}`);
      else nested.forEach((p) => paths.add(p));
    }
  }
  return [...paths].sort();
}

/** Leaf member paths of a JSON value (arrays are leaves). */
function valueMembers(value: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(value).flatMap(([name, v]) => (typeof v === 'object' && v !== null && !Array.isArray(v)
    ? valueMembers(v as Record<string, unknown>, `${prefix}${name}.`)
    : [`${prefix}${name}`]));
}

test('the members documented for fleet.json and keys.json are those the code knows', () => {
  assert.deepEqual(documentedMembers('fleet.json'), schemaMembers(schema('fleet-config.json')));
  assert.deepEqual(documentedMembers('keys.json'), schemaMembers(schema('key-file.json')));
});

test('what init writes matches the documented formats, in every claim mode', async () => {
  const base: Omit<InitOptions, 'dir' | 'claim'> = { fleetId: 'acme', serials: 'SN-1,SN-2', mqttVersion: '5', generatedToken: 'generated-token', listen: '127.0.0.1:18830', deviceBroker: 'mqtt://gateway.lan:1883' };
  for (const claim of ['token', 'allowlist', 'approve'] as const) {
    const dir = join(mkdtempSync(join(tmpdir(), 'tsunagu-fleet-docs-')), 'fleet');
    try {
      let printed = '';
      await runInit({ ...base, dir, claim }, { write: (text: string) => (printed += text) });
      // The hint names the bootstrap file as the docs do (provisioning.md: `--out ./tsunagu.json`).
      assert.match(printed, /^next: tsunagu-fleet bootstrap .*--out tsunagu\.json/m);
      assert.ok(doc.includes('--out ./tsunagu.json'), "doc.includes('--out ./tsunagu.json')");
      const fleetJson = JSON.parse(readFileSync(join(dir, 'fleet.json'), 'utf8')) as Record<string, unknown>;
      const keysJson = JSON.parse(readFileSync(join(dir, 'keys.json'), 'utf8')) as Record<string, string>;
      assert.deepEqual(checkJsonSchema(schema('fleet-config.json'), fleetJson), []);
      assert.deepEqual(checkJsonSchema(schema('key-file.json'), keysJson), []);
      for (const member of valueMembers(fleetJson)) assert.ok(documentedMembers('fleet.json').includes(member), `fleet.json member ${member} is not documented`);
      assert.deepEqual(valueMembers(keysJson).sort(), documentedMembers('keys.json'));
      for (const file of ['fleet.json', 'keys.json']) assert.equal(statSync(join(dir, file)).mode & 0o777, 0o600, `${file} is not 0600`);

      // The key file as documented: a third party derives the public halves from the secret ones.
      const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
      const signSecret = b64(keysJson.signSecretKey!);
      assert.equal(signSecret.length, 64);
      assert.deepEqual(nacl.sign.keyPair.fromSeed(signSecret.subarray(0, 32)).publicKey, b64(keysJson.signPublicKey!));
      assert.deepEqual(signSecret.subarray(32), b64(keysJson.signPublicKey!));
      assert.deepEqual(nacl.box.keyPair.fromSecretKey(b64(keysJson.boxSecretKey!)).publicKey, b64(keysJson.boxPublicKey!));

      // counter.json: absent until the first signed message; {"v":1,"ctr":n}, the last ctr signed
      // with, written before the message leaves; a signer without it starts from the clock.
      assert.equal(existsSync(join(dir, 'counter.json')), false, 'init writes no counter.json');
      const signer = new FleetSigner(loadFleetDir(dir), tweetnaclEd25519, () => 1767225600000);
      const signed = signer.sign({ to: 'd-0104ab9319bfed95fbbd', typ: 'cmd', data: { name: 'ping' }, lifetimeMs: 60_000 });
      const counter = JSON.parse(readFileSync(join(dir, 'counter.json'), 'utf8')) as Record<string, unknown>;
      assert.deepEqual(Object.keys(counter), ['v', 'ctr']);
      const payload = JSON.parse(Buffer.from((JSON.parse(Buffer.from(signed.bytes).toString()) as { body: string }).body, 'base64').toString()) as { ctr: number };
      assert.deepEqual(counter, { v: 1, ctr: payload.ctr });
      assert.equal(payload.ctr, 1767225600000);
      assert.equal(keyId(b64(keysJson.signPublicKey!)).length, 16);
    } finally {
      rmSync(join(dir, '..'), { recursive: true, force: true });
    }
  }
});
