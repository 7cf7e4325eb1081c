import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { COMMAND_TYPE, type ReplyData } from '../../protocol/commands.js';
import { defaultEd25519 } from '../../protocol/ed25519.js';
import { newMessageId, signEnvelope } from '../../protocol/envelope.js';
import { generateKeyPairs, keyId } from '../../protocol/keys.js';
import { deviceTopic } from '../../protocol/topics.js';
import { AgentProcess, TRUSTED_QUIET_CONFIG } from '../support/agent-process.js';
import type { TestFleet } from '../support/fleet.js';
import { REPORT_NOW_REPLY_MS } from '../support/fleet-session.js';
import { malleate } from '../support/malleate.js';
import type { TestBroker } from '../support/mosquitto.js';
import { waitFor } from '../support/wait-for.js';
import { closeDeviceWorld, startDeviceWorld, type DeviceWorld, type FleetSession, type FleetWorld } from '../support/fleet-world.js';

// The signed command channel end to end: the shipped agent bundle, a real
// Mosquitto, and the fleet library. Every refusal is sent as raw bytes on
// the device's command topic, exactly as an attacker with publish rights
// (a compromised fleet account or broker) could.
const ed = defaultEd25519();
let world: DeviceWorld;
let broker: TestBroker;
let tf: TestFleet;
let agent: AgentProcess;
let stateDir: string;
let bootstrapPath: string;
let deviceId: string;
let fleet: FleetSession;
const events: Record<string, unknown>[] = [];
const replies: ReplyData[] = [];

const CONFIG = TRUSTED_QUIET_CONFIG;

function startAgent(w: FleetWorld = world): AgentProcess {
  return new AgentProcess({ stateDir: w.stateDir, bootstrapPath: w.bootstrapPath, configYaml: CONFIG });
}

function signed(payload: { id?: string; to?: string; iat?: number; exp?: number; ctr?: number; data: unknown }, secretKey = tf.fleet.keys.signSecretKey, publicKey = tf.fleet.keys.signPublicKey): { id: string; bytes: Uint8Array } {
  const id = payload.id ?? newMessageId();
  const now = Date.now();
  const bytes = signEnvelope({
    typ: COMMAND_TYPE, id, to: payload.to ?? deviceId, iat: payload.iat ?? now, exp: payload.exp ?? now + 60_000,
    ctr: payload.ctr ?? now * 1000 + Math.floor(Math.random() * 1000), data: payload.data,
  }, keyId(publicKey), secretKey, ed);
  return { id, bytes };
}

/** A fleet-signed command payload changed by `change`, past what the payload schema allows. */
function signedPayload(change: Record<string, unknown>): { id: string; bytes: Uint8Array } {
  const id = newMessageId();
  const now = Date.now();
  const payload = { typ: COMMAND_TYPE, id, to: deviceId, iat: now, exp: now + 60_000, ctr: now * 1000, data: { name: 'ping', args: {} }, ...change };
  return { id, bytes: signEnvelope(payload, keyId(tf.fleet.keys.signPublicKey), tf.fleet.keys.signSecretKey, ed) };
}

async function publishRaw(bytes: Uint8Array | string): Promise<void> {
  await fleet.client.publishAsync(deviceTopic(deviceId, 'cmd'), typeof bytes === 'string' ? bytes : Buffer.from(bytes), { qos: 1 });
}

const runs = (id: string): number => agent.lines.filter((l) => l.commandId === id && l.msg === 'running command').length;

before(async () => {
  world = await startDeviceWorld('tsunagu-cmd-', startAgent, { events });
  ({ broker, tf, agent, stateDir, bootstrapPath, deviceId, fleet } = world);
  await fleet.client.subscribeAsync(deviceTopic(deviceId, 'reply'), { qos: 1 });
  fleet.client.on('message', (topic, payload) => {
    if (topic === deviceTopic(deviceId, 'reply')) replies.push(fleet.link.openReply(deviceId, new Uint8Array(payload)).data);
  });
});

after(async () => {
  await closeDeviceWorld({ ...world, agent });
});

test('a signed ping is answered with a reply signed by the device key, carrying the traceparent', async () => {
  const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const reply = await fleet.link.send(deviceId, { name: 'ping', args: {} }, { timeoutMs: 8000, traceparent: tp });
  assert.equal(reply.data.ok, true);
  assert.equal(reply.payload.tp, tp);
  assert.equal(reply.payload.to, tf.fleet.config.fleetId);
  const logged = await agent.waitForLog((l) => l.commandId === reply.id && l.msg === 'running command');
  assert.equal(logged.traceparent, tp);
});

test('an unknown command gets an error reply with its code', async () => {
  const { id, bytes } = signed({ data: { name: 'self-destruct', args: {} } });
  await publishRaw(bytes);
  const reply = await waitFor('the reply', () => replies.find((r) => r.re === id), 8000);
  assert.equal(reply.ok, false);
  assert.equal(!reply.ok && reply.code, 'UNKNOWN_COMMAND');
});

test('every refusal is reported with its stable code and nothing runs', async () => {
  const other = generateKeyPairs();
  const valid = signed({ data: { name: 'ping', args: {} } });
  const env = JSON.parse(Buffer.from(valid.bytes).toString()) as { sig: string; body: string; kid: string; v: number };
  // S + L: tweetnacl alone would accept this signature.
  const sig = malleate(Buffer.from(env.sig, 'base64'));
  const flipped = Buffer.from(env.sig, 'base64');
  flipped[5] = flipped[5]! ^ 0x40;
  const cases: { name: string; bytes: Uint8Array | string; code: string; id?: string }[] = [
    { name: 'unsigned', bytes: JSON.stringify({ v: 1, kid: env.kid, body: env.body }), code: 'UNSIGNED' },
    { name: 'malformed', bytes: '{"v":1,"kid"', code: 'MALFORMED' },
    { name: 'malleated', bytes: JSON.stringify({ ...env, sig: sig.toString('base64') }), code: 'NON_CANONICAL_SIGNATURE' },
    { name: 'bad signature', bytes: JSON.stringify({ ...env, sig: flipped.toString('base64') }), code: 'BAD_SIGNATURE' },
    { name: 'unknown key', ...signed({ data: { name: 'ping', args: {} } }, other.signSecretKey, other.signPublicKey), code: 'UNKNOWN_KEY' },
    { name: 'another device', ...signed({ to: 'd-00000000000000000000', data: { name: 'ping', args: {} } }), code: 'WRONG_DEVICE' },
    { name: 'expired', ...signed({ iat: Date.now() - 7_200_000, exp: Date.now() - 3_600_000, data: { name: 'ping', args: {} } }), code: 'EXPIRED' },
    { name: 'deeply nested', bytes: '['.repeat(40) + ']'.repeat(40), code: 'TOO_DEEP' },
    { name: 'oversized', bytes: JSON.stringify({ v: 1, kid: env.kid, sig: env.sig, body: 'A'.repeat(100_000) }), code: 'TOO_LARGE' },
    { name: 'signed desired on the command topic', ...signedPayload({ typ: 'desired' }), code: 'WRONG_TYPE' },
    { name: 'signed payload with an extra member', ...signedPayload({ extra: true }), code: 'SCHEMA' },
  ];
  for (const c of cases) {
    const before = events.length;
    await publishRaw(c.bytes);
    const event = await waitFor('the message-refused event', () => events.slice(before).find((e) => e.type === 'message-refused'), 8000);
    assert.equal(event.code, c.code, c.name);
    // The id is reported exactly when the signature verified.
    assert.equal(event.id, c.code === 'UNKNOWN_KEY' ? undefined : c.id, c.name);
  }
  // Verified but refused messages also get a reply naming the code.
  for (const c of cases.filter((x) => x.id !== undefined && x.code !== 'UNKNOWN_KEY')) {
    const reply = await waitFor('the reply', () => replies.find((r) => r.re === c.id), 8000);
    assert.equal(!reply.ok && reply.code, c.code, c.name);
  }
  assert.equal(agent.lines.filter((l) => l.msg === 'running command' && cases.some((c) => c.id === l.commandId)).length, 0);
});

test('a command delivered again after a broker restart and an agent restart runs once and is answered both times', async () => {
  const { id, bytes } = signed({ data: { name: 'report-now', args: {} } });
  await publishRaw(bytes);
  const first = await waitFor('the first reply', () => replies.find((r) => r.re === id), REPORT_NOW_REPLY_MS);
  assert.equal(first.ok, true);
  assert.equal(runs(id), 1);

  await broker.restart(300);
  await agent.waitForLog((l) => /→ online/.test(String(l.msg)) && agent.lines.indexOf(l) > agent.lines.findIndex((x) => x.commandId === id));
  await waitFor('the fleet reconnected', () => (fleet.client.connected ? true : undefined), 10_000);
  const countBefore = replies.filter((r) => r.re === id).length;
  await publishRaw(bytes);
  await waitFor('the reply to the redelivery', () => (replies.filter((r) => r.re === id).length > countBefore ? true : undefined), REPORT_NOW_REPLY_MS);
  assert.equal(runs(id), 1, 'redelivery after a broker restart must not run it again');

  // The replay record survives the agent's own restart.
  await agent.stop();
  agent = startAgent();
  await agent.waitForMsg(/→ online/);
  const countAfter = replies.filter((r) => r.re === id).length;
  await publishRaw(bytes);
  await waitFor('the reply from the restarted agent', () => (replies.filter((r) => r.re === id).length > countAfter ? true : undefined), REPORT_NOW_REPLY_MS);
  assert.equal(runs(id), 0, 'the restarted agent answers from its record without running it');
  const again = replies.filter((r) => r.re === id);
  assert.ok(again.every((r) => JSON.stringify(r) === JSON.stringify(first)), 'again.every((r) => JSON.stringify(r) === JSON.stringify(first))');
});

test('rotate-credentials through the fleet CLI: the device switches to the new password and the old one stops working', async () => {
  const { spawnSync } = await import('node:child_process');
  const { readFileSync } = await import('node:fs');
  const { FLEET_BUNDLE } = await import('../support/agent-process.js');
  const { connectAs } = await import('../support/mqtt-probe.js');
  const identityPath = join(stateDir, 'identity.json');
  const before = JSON.parse(readFileSync(identityPath, 'utf8')) as { grant: { password: string; username: string; clientId: string } };
  const r = spawnSync(process.execPath, [FLEET_BUNDLE, 'send', '--dir', tf.fleet.dir, deviceId, 'rotate-credentials', '--timeout', '10000'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  // Force a new connection: the device tries the staged password first.
  await broker.restart(200);
  await waitFor('the staged password promoted', () => {
    const now = JSON.parse(readFileSync(identityPath, 'utf8')) as { grant: { password: string }; nextPassword?: string };
    return now.grant.password !== before.grant.password && now.nextPassword === undefined ? true : undefined;
  }, 15_000);
  await waitFor('the fleet reconnected', () => (fleet.client.connected ? true : undefined), 10_000);
  const reply = await fleet.link.send(deviceId, { name: 'ping', args: {} }, { timeoutMs: 8000 });
  assert.equal(reply.data.ok, true);
  await assert.rejects(connectAs(broker.url, before.grant.username, before.grant.password, `${before.grant.clientId}`));
});

// Last: it runs the agent with its clock untrusted.
test('with the clock untrusted a message issued ahead of the device clock is accepted within the fleet-time bound; a replay of it is not run', async () => {
  await agent.stop();
  agent = new AgentProcess({ stateDir, bootstrapPath, configYaml: CONFIG.replace('trust: always', 'trust: never') });
  await agent.waitForMsg(/→ online/);
  // Four minutes "in the future": a trusted clock would not mind either, but here only the
  // horizon of the fleet messages accepted in this boot bounds it (docs/protocol.md §9.1).
  const { id, bytes } = signed({ iat: Date.now() + 4 * 60_000, exp: Date.now() + 5 * 60_000, data: { name: 'ping', args: {} } });
  await publishRaw(bytes);
  const reply = await waitFor('the reply', () => replies.find((r) => r.re === id), 8000);
  assert.equal(reply.ok, true);
  await publishRaw(bytes);
  await waitFor('two replies', () => (replies.filter((r) => r.re === id).length === 2 ? true : undefined), 8000);
  assert.equal(runs(id), 1);
});
