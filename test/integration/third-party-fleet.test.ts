import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import nacl from 'tweetnacl';
import { AgentProcess, FLEET_BUNDLE } from '../support/agent-process.js';
import { checkJsonSchema } from '../support/json-schema-check.js';
import { REPORT_NOW_REPLY_MS } from '../support/fleet-session.js';
import { freePort } from '../support/mosquitto.js';

/*
 * A fleet manager of another make, written from the docs alone: it reads the
 * fleet directory's files (provisioning.md), learns the device's keys from
 * `tsunagu-fleet devices --json --keys`, signs commands and seals a secret
 * with plain NaCl (protocol.md §3–§5, §9), and checks every message it sends
 * and receives against docs/schemas/. Nothing of protocol/ is used here.
 * The device is the shipped agent bundle, the fleet `tsunagu-fleet` on its
 * embedded broker (MQTT 3.1.1).
 */
let work: string;
let fleetDir: string;
let serve: ChildProcess | undefined;
let agent: AgentProcess | undefined;

const schemaDir = join(import.meta.dirname, '..', '..', 'docs', 'schemas');
function assertValid(file: string, value: unknown): void {
  const schema = JSON.parse(readFileSync(join(schemaDir, file), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(checkJsonSchema(schema, value), [], `${JSON.stringify(value).slice(0, 200)} is not valid against docs/schemas/${file}`);
}

function fleet(...args: string[]): string {
  const r = spawnSync(process.execPath, [FLEET_BUNDLE, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'tsunagu-third-party-'));
  fleetDir = join(work, 'fleet');
  fleet('init', '--dir', fleetDir, '--fleet-id', 'other', '--listen', `127.0.0.1:${await freePort()}`, '--claim-token', 'other-token');
  fleet('bootstrap', '--dir', fleetDir, '--out', join(work, 'bootstrap.json'), '--claim-token', 'other-token');
  const child = spawn(process.execPath, [FLEET_BUNDLE, 'serve', '--dir', fleetDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  serve = child;
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`serve exited (${code})`)));
    child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('enrollment service listening')) resolve(); });
  });
});

after(async () => {
  await agent?.stop();
  const child = serve;
  if (child !== undefined && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  rmSync(work, { recursive: true, force: true });
});

const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
const keyIdOf = (publicKey: Uint8Array): string => createHash('sha256').update(publicKey).digest('hex').slice(0, 16);

/** The next message on `topic` for which `accept` returns a value. */
function next<T>(client: MqttClient, topic: string, accept: (payload: Buffer) => T | undefined, timeoutMs = 15_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { client.removeListener('message', onMessage); reject(new Error(`nothing on ${topic} in time`)); }, timeoutMs);
    const onMessage = (t: string, payload: Buffer): void => {
      if (t !== topic) return;
      const value = accept(payload);
      if (value === undefined) return;
      clearTimeout(timer);
      client.removeListener('message', onMessage);
      resolve(value);
    };
    client.on('message', onMessage);
  });
}

test('a fleet manager written from the docs signs commands, verifies replies and seals secrets to a tsunagu device', async () => {
  agent = new AgentProcess({ stateDir: join(work, 'device'), bootstrapPath: join(work, 'bootstrap.json'), serial: 'other-1' });
  const deviceId = await agent.enrolledAndOnline();

  // The fleet directory's files, as provisioning.md documents them.
  const fleetJson = JSON.parse(readFileSync(join(fleetDir, 'fleet.json'), 'utf8')) as { fleetId: string; broker: { url: string; username: string; password: string; protocolVersion: 4 | 5 } };
  const keysJson = JSON.parse(readFileSync(join(fleetDir, 'keys.json'), 'utf8')) as { signPublicKey: string; signSecretKey: string };
  assertValid('fleet-config.json', fleetJson);
  assertValid('key-file.json', keysJson);
  const fleetKid = keyIdOf(b64(keysJson.signPublicKey));

  // The device's public keys, from the documented listing.
  const listing = JSON.parse(fleet('devices', '--dir', fleetDir, '--json', '--keys')) as { deviceId: string; signPublicKey: string; keyId: string; boxPublicKey: string }[];
  assertValid('devices-listing.json', listing);
  const device = listing.find((d) => d.deviceId === deviceId)!;
  assert.equal(device.keyId, keyIdOf(b64(device.signPublicKey)));

  const client = await mqtt.connectAsync(fleetJson.broker.url, {
    username: fleetJson.broker.username, password: fleetJson.broker.password, protocolVersion: fleetJson.broker.protocolVersion,
    clientId: `other-manager-${randomBytes(4).toString('hex')}`, reconnectPeriod: 0,
  });
  try {
    const topic = (kind: string): string => `tsunagu/devices/${deviceId}/${kind}`;
    await client.subscribeAsync([topic('reply'), topic('status'), topic('inventory'), topic('metrics')], { qos: 1 });

    /** Sign a command as protocol.md §4 and §9.2 say, check it against the schemas, publish it, and return its verified reply. */
    const send = async (data: unknown, timeoutMs?: number): Promise<{ re: string; ok: boolean; result?: Record<string, unknown>; code?: string }> => {
      const now = Date.now();
      const payload = { typ: 'cmd', id: randomBytes(16).toString('hex'), to: deviceId, iat: now, exp: now + 60_000, ctr: now, data };
      assertValid('cmd.payload.json', payload);
      const body = Buffer.from(JSON.stringify(payload), 'utf8');
      const sig = nacl.sign.detached(body, b64(keysJson.signSecretKey));
      const envelope = { v: 1, kid: fleetKid, sig: Buffer.from(sig).toString('base64'), body: body.toString('base64') };
      assertValid('envelope.json', envelope);
      const reply = next(client, topic('reply'), (bytes) => {
        const outer = JSON.parse(bytes.toString('utf8')) as { kid: string; sig: string; body: string };
        assertValid('envelope.json', outer);
        assert.equal(outer.kid, device.keyId, 'the reply is signed under the key id the listing gives');
        assert.ok(nacl.sign.detached.verify(b64(outer.body), b64(outer.sig), b64(device.signPublicKey)), 'the reply verifies with the listed signing key');
        const inner = JSON.parse(Buffer.from(outer.body, 'base64').toString('utf8')) as { to: string; data: { re: string; ok: boolean } };
        assertValid('reply.payload.json', inner);
        assert.equal(inner.to, fleetJson.fleetId);
        return inner.data.re === payload.id ? inner.data : undefined;
      }, timeoutMs);
      await client.publishAsync(topic('cmd'), JSON.stringify(envelope), { qos: 1 });
      return reply;
    };

    const ping = await send({ name: 'ping' });
    assert.equal(ping.ok, true);
    assert.equal(ping.result?.pong, true);

    // Reports: report-now sends inventory and metrics; each is valid against its schema.
    const inventory = next(client, topic('inventory'), (b) => JSON.parse(b.toString('utf8')) as unknown, REPORT_NOW_REPLY_MS);
    const metrics = next(client, topic('metrics'), (b) => JSON.parse(b.toString('utf8')) as unknown, REPORT_NOW_REPLY_MS);
    assert.equal((await send({ name: 'report-now' }, REPORT_NOW_REPLY_MS)).ok, true);
    assertValid('inventory.json', await inventory);
    assertValid('metrics.json', await metrics);

    // A secret sealed to the listed box key as protocol.md §5 says: the device opens it, or answers SEAL_OPEN_FAILED.
    const ephemeral = nacl.box.keyPair();
    const nonce = nacl.randomBytes(24);
    const password = randomBytes(18).toString('base64url');
    const box = nacl.box(Buffer.from(password, 'utf8'), nonce, b64(device.boxPublicKey), ephemeral.secretKey);
    const sealed = Buffer.concat([ephemeral.publicKey, nonce, box]).toString('base64');
    const staged = await send({ name: 'rotate-credentials', args: { sealed } });
    assert.deepEqual({ ok: staged.ok, result: staged.result }, { ok: true, result: { staged: true } });

    // The retained status, as the fleet reads it (§7).
    const status = next(client, topic('status'), (b) => (b.length === 0 ? undefined : JSON.parse(b.toString('utf8')) as { state: string }));
    await client.unsubscribeAsync(topic('status'));
    await client.subscribeAsync(topic('status'), { qos: 1 });
    const online = await status;
    assertValid('status.json', online);
    assert.equal(online.state, 'online');
  } finally {
    await client.endAsync();
  }
});
