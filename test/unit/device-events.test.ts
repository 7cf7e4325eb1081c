import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { silentLogger } from '../../common/logger.js';
import { CommandChannel, type CommandHandlers } from '../../agent/commands/command-channel.js';
import { CommandStore } from '../../agent/commands/command-store.js';
import { FleetVerifier } from '../../agent/commands/fleet-verifier.js';
import { DesiredChannel } from '../../agent/desired/desired-channel.js';
import { DesiredStore } from '../../agent/desired/desired-store.js';
import type { DiskReading } from '../../agent/images/disk-fit.js';
import type { EngineImage, ImageEngine, RemoveOutcome } from '../../agent/images/docker-images.js';
import { ImageCollector } from '../../agent/images/image-collector.js';
import { ImageRecords } from '../../agent/images/image-records.js';
import { PressureMonitor } from '../../agent/pressure/pressure-monitor.js';
import { interpretRuntimeEvent } from '../../agent/supervisor/engine-events.js';
import type { SupervisorEvent } from '../../agent/supervisor/supervisor.js';
import { utf8 } from '../../protocol/bytes.js';
import { defaultEd25519 } from '../../protocol/ed25519.js';
import { signEnvelope, type SignedPayload } from '../../protocol/envelope.js';
import { TsunaguError } from '../../protocol/errors.js';
import { KNOWN_EVENT_SCHEMAS, readDeviceEvent, type DeviceEventBody, type DeviceEventType } from '../../protocol/events/device-events.js';
import { serviceEventOnWire } from '../../protocol/events/service-prefix.js';
import { generateKeyPairs, keyId } from '../../protocol/keys.js';
import { checkJsonSchema } from '../support/json-schema-check.js';

/**
 * Every event the agent can emit is one the protocol knows, with the members
 * its schema (and its published JSON Schema, and protocol.md §9.6) gives it.
 * The events come from the real emitters wherever one runs without an engine
 * or a broker; the others are written against the emitters' own types.
 */
const root = join(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'tsunagu-events-'));
after(() => rmSync(work, { recursive: true, force: true }));
const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const MiB = 1024 * 1024;

/** What the agent's session does with a body: the frame, then JSON on the wire. */
function onWire(body: DeviceEventBody): unknown {
  return JSON.parse(JSON.stringify({ v: 1, at: 1_767_225_600_000, ...body })) as unknown;
}

/** The supervisor's events: from the engine-event interpreter, the rest typed as the supervisor emits them. */
function supervisorEvents(): SupervisorEvent[] {
  const runtime = [
    interpretRuntimeEvent({ action: 'start', service: 'web', containerId: 'c1', exitCode: null, health: null }),
    interpretRuntimeEvent({ action: 'die', service: 'web', containerId: 'c1', exitCode: 137, health: null }),
    interpretRuntimeEvent({ action: 'health_status', service: 'web', containerId: 'c1', exitCode: null, health: 'healthy' }),
    interpretRuntimeEvent({ action: 'health_status', service: 'web', containerId: 'c1', exitCode: null, health: 'unhealthy' }),
  ].map((r) => r.event).filter((e) => e !== undefined);
  // One of each type the supervisor emits itself (agent/supervisor/supervisor.ts): a missing type does not compile.
  const emitted: { [T in SupervisorEvent['type']]?: Extract<SupervisorEvent, { type: T }> } = {
    'pull-progress': { type: 'pull-progress', service: 'web', image: 'nginx:1', currentBytes: 5, totalBytes: 10 },
    pulled: { type: 'pulled', service: 'web', image: 'nginx:1' },
    'pull-failed': { type: 'pull-failed', service: 'web', image: 'nginx:1', code: 'NO_SPACE', error: 'no room', retryAt: 1_767_225_600_500.5 },
    'update-switched': { type: 'update-switched', service: 'web', image: 'nginx:2', strategy: 'kill-then-download', reason: 'disk short' },
    backoff: { type: 'backoff', service: 'web', restartCount: 3, exitCode: null, retryAt: 1_767_225_608_000 },
    evicted: { type: 'evicted', service: 'web', reason: 'memory available 50.0 MiB below 10 %' },
    restored: { type: 'restored', service: 'web' },
    'step-failed': { type: 'step-failed', service: 'web', step: 'create web', error: 'engine said no', retryAt: 1_767_225_601_000 },
    recreated: { type: 'recreated', service: 'web', containerId: 'c1', reason: 'stale network' },
    'probation-failed': { type: 'probation-failed', service: 'web', reason: 'exited with 1', version: '3', rolledBackTo: null },
  };
  return [...runtime, ...Object.values(emitted)];
}

function pressureEvents(): DeviceEventBody[] {
  const events: DeviceEventBody[] = [];
  const m = new PressureMonitor({
    config: { memory: { evictBelowPercent: 10, clearAbovePercent: 20 }, temperature: null, escalateAfterMs: 30_000, clearForMs: 60_000 },
    target: { setEvictions: () => undefined }, onEvent: (e) => events.push(e),
  });
  // entered, escalated, cleared, then the two tiers restored.
  for (const [at, mib] of [[0, 50], [40_000, 50], [60_000, 500], [120_000, 500], [180_000, 500]] as const) {
    m.observe({ at, memoryAvailableBytes: mib * MiB, memoryTotalBytes: 1000 * MiB, temperatureCelsius: null });
  }
  return events;
}

/** One image the agent pulled, unused, on a disk above the high watermark: removed, then summed up. */
async function imageEvents(): Promise<DeviceEventBody[]> {
  const disk = { used: 900 * MiB };
  const image: EngineImage = { id: 'sha256:aa', refs: ['nginx:1'], layers: ['sha256:l1'], sizeBytes: 200 * MiB };
  let present = true;
  const engine: ImageEngine = {
    remotePlatforms: () => Promise.reject(new Error('not used')),
    localImages: () => Promise.resolve(present ? [image] : []),
    imagesInUse: () => Promise.resolve(new Set()),
    imageId: () => Promise.resolve(present ? image.id : undefined),
    removeImage: (): Promise<RemoveOutcome> => {
      present = false;
      disk.used -= image.sizeBytes;
      return Promise.resolve('removed');
    },
    dataRoot: () => Promise.resolve('/data'),
  };
  const records = new ImageRecords(join(work, 'images.json'));
  records.notePulled('nginx:1', image.id, 0);
  const events: DeviceEventBody[] = [];
  const collector = new ImageCollector({
    engine, records, log: silentLogger(), emit: (e) => events.push(e), protectedRefs: () => [], watermarks: { highPercent: 80, lowPercent: 60 },
    gauge: { read: (): Promise<DiskReading> => Promise.resolve({ path: '/data', totalBytes: 1000 * MiB, usedBytes: disk.used, availableBytes: 1000 * MiB - disk.used }) },
  });
  await collector.collect('disk-sample');
  return events;
}

/** The desired channel with a stand-in verifier (the bytes are the payload's JSON; `bad` fails). */
async function desiredEvents(): Promise<DeviceEventBody[]> {
  const events: DeviceEventBody[] = [];
  const message = (version: number, compose: Record<string, unknown>): Uint8Array => utf8(JSON.stringify({
    typ: 'desired', id: '0'.repeat(32), to: 'dev-1', iat: 0, exp: 0, ctr: version, tp: TP, data: { version, compose },
  } satisfies SignedPayload));
  const idle = { version: null, status: 'applying' as const, services: [], error: null };
  const channel = new DesiredChannel({
    verifier: {
      verifyAddressed: (bytes: Uint8Array): SignedPayload => {
        const text = Buffer.from(bytes).toString();
        if (text === 'bad') throw new TsunaguError('BAD_SIGNATURE');
        return JSON.parse(text) as SignedPayload;
      },
    },
    boxSecretKey: generateKeyPairs().boxSecretKey,
    store: new DesiredStore(mkdtempSync(join(work, 'desired-')), silentLogger()),
    admission: [{ name: 'no-db', check: (d) => (d.services.some((s) => s.name === 'db') ? { code: 'POLICY_REFUSED', services: { db: ['not on this device'] } } : null) }],
    supervisor: { apply: (_doc, version) => Promise.resolve({ ...idle, version }), state: () => idle },
    deviceLabels: new Set(), setRegistries: () => undefined, publishState: () => undefined,
    emitEvent: (e) => events.push(e), logger: silentLogger(), clock: { now: () => 42 },
  });
  await channel.deliver(utf8('bad'));
  await channel.deliver(message(2, { services: { web: { image: 'nginx:1' } } }));
  await channel.deliver(message(1, { services: { web: { image: 'nginx:1' } } }));
  await channel.deliver(message(3, { services: { web: { image: 'nginx:1', build: '.' } } }));
  await channel.deliver(message(4, { services: { db: { image: 'postgres:16' } } }));
  return events;
}

/** The command channel: bytes that are no envelope, then a fleet-signed payload of the wrong type (its id is readable). */
async function commandEvents(): Promise<DeviceEventBody[]> {
  const events: DeviceEventBody[] = [];
  const ed = defaultEd25519();
  const fleet = generateKeyPairs();
  const kid = keyId(fleet.signPublicKey);
  const channel = new CommandChannel({
    fleetId: 'acme', deviceKeys: generateKeyPairs(), ed,
    verifier: new FleetVerifier({ deviceId: 'dev-1', fleetKeys: new Map([[kid, fleet.signPublicKey]]), ed, clock: { now: () => Date.now() }, clockTrusted: () => true }),
    store: new CommandStore(mkdtempSync(join(work, 'cmd-')), silentLogger()),
    // Nothing here is accepted, so no handler runs.
    handlers: {} as CommandHandlers,
    sendReply: () => Promise.resolve(), emitEvent: (e) => events.push(e), logger: silentLogger(),
  });
  await channel.deliver(utf8('not an envelope'));
  const wrongType: SignedPayload = { typ: 'desired', id: 'ab'.repeat(16), to: 'dev-1', iat: Date.now(), exp: Date.now() + 60_000, ctr: 1, tp: TP, data: {} };
  await channel.deliver(signEnvelope(wrongType, kid, fleet.signSecretKey, ed));
  return events;
}

async function everyEmittedEvent(): Promise<DeviceEventBody[]> {
  return [
    ...supervisorEvents().map((e) => serviceEventOnWire(e, TP)),
    ...pressureEvents(), ...await imageEvents(), ...await desiredEvents(), ...await commandEvents(),
    // Sent by agent/agent.ts for a packet over the broker's limit, by agent/main.ts from the watchdog, by agent/link/outbound.ts after an outage.
    { type: 'message-refused', topic: 'link', code: 'TOO_LARGE', message: 'packet too large' },
    { type: 'watchdog-stuck', reason: 'no reconcile pass for 120 s' },
    { type: 'outbox-dropped', dropped: { reply: 0, event: 2, state: 1, metrics: 40 } },
  ];
}

const KNOWN_TYPES = KNOWN_EVENT_SCHEMAS.flatMap((s) => s.shape.type.def.values);

test('every event the agent emits parses with the protocol schema of its type, and is valid against its published JSON Schema', async () => {
  const events = await everyEmittedEvent();
  const seen = new Set<string>();
  for (const body of events) {
    const wire = onWire(body);
    const read = readDeviceEvent(wire);
    assert.ok(read?.known === true, `not a known event: ${JSON.stringify(wire)}`);
    assert.deepEqual(read.event, wire, 'parsed as sent, nothing dropped');
    const schema = JSON.parse(readFileSync(join(root, 'docs', 'schemas', `event.${body.type}.json`), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(checkJsonSchema(schema, wire), [], `${body.type}: not valid against docs/schemas/event.${body.type}.json`);
    seen.add(body.type);
  }
  assert.deepEqual([...seen].sort(), [...KNOWN_TYPES].sort(), 'every known type is emitted by some emitter above');
  // The emitters' variants: a refusal with a readable id and a trace, a refusal by field and by service, a restored tier.
  const find = (type: DeviceEventType, has: string): boolean => events.some((e) => e.type === type && has in e);
  for (const [type, member] of [['message-refused', 'id'], ['message-refused', 'source'], ['desired-refused', 'field'], ['desired-refused', 'services'], ['pressure', 'tier'], ['desired-accepted', 'traceparent']] as const) {
    assert.ok(find(type, member), `no ${type} with ${member}`);
  }
});

test('the supervisor\'s names get the service- prefix on the wire, and the trace of the desired message', () => {
  assert.deepEqual(serviceEventOnWire({ type: 'pulled', service: 'web', image: 'nginx:1' }, TP), { type: 'service-pulled', service: 'web', image: 'nginx:1', traceparent: TP });
  assert.deepEqual(serviceEventOnWire({ type: 'restored', service: 'web' }, undefined), { type: 'service-restored', service: 'web' });
});

test('a receiver keeps a newer agent\'s type as its frame, and drops a known type whose members do not match', () => {
  assert.deepEqual(readDeviceEvent({ v: 1, at: 5, type: 'service-teleported', service: 'web' }), { known: false, event: { v: 1, at: 5, type: 'service-teleported', service: 'web' } });
  assert.equal(readDeviceEvent({ v: 1, at: 5, type: 'service-pulled', service: 'web' }), undefined);
  assert.equal(readDeviceEvent({ v: 1, at: 5, type: 'pressure', change: 'boiling', reason: '', evicted: [], memoryAvailableBytes: 1, memoryTotalBytes: 2, temperatureCelsius: null }), undefined);
  assert.equal(readDeviceEvent({ v: 2, at: 5, type: 'service-pulled', service: 'web', image: 'x' }), undefined);
  // A member a newer agent added to a known type is kept.
  assert.deepEqual(readDeviceEvent({ v: 1, at: 5, type: 'service-pulled', service: 'web', image: 'x', layers: 3 })?.event, { v: 1, at: 5, type: 'service-pulled', service: 'web', image: 'x', layers: 3 });
});

test('emitting an unknown type or a wrong member does not compile', () => {
  // @ts-expect-error a type the protocol does not know
  const unknown: DeviceEventBody = { type: 'service-teleported', service: 'web' };
  // @ts-expect-error a misspelled member
  const misspelled: DeviceEventBody = { type: 'service-pulled', service: 'web', imag: 'nginx:1' };
  // @ts-expect-error a member missing
  const missing: SupervisorEvent = { type: 'pulled', service: 'web' };
  // @ts-expect-error the wire name inside the supervisor
  const prefixed: SupervisorEvent = { type: 'service-pulled', service: 'web', image: 'nginx:1' };
  assert.equal([unknown, misspelled, missing, prefixed].length, 4);
});

test('protocol.md §9.6 names every event type and every member of each, as the schemas have them', () => {
  const doc = readFileSync(join(root, 'docs', 'protocol.md'), 'utf8');
  const section = doc.slice(doc.indexOf('### 9.6 Events'), doc.indexOf('### 9.7 '));
  for (const schema of KNOWN_EVENT_SCHEMAS) {
    const type = schema.shape.type.def.values[0]!;
    const entry = section.split('\n- ').find((item) => item.includes(`\`${type}\``));
    assert.ok(entry !== undefined, `protocol.md §9.6 does not list ${type}`);
    for (const member of Object.keys(schema.shape)) {
      // The frame's members are told once, above the lists; `service` once for all service events.
      if (['v', 'at', 'type', 'traceparent'].includes(member) || (member === 'service' && type.startsWith('service-'))) continue;
      assert.ok(entry.includes(`\`${member}\``) || entry.includes(`\`${member}?\``), `protocol.md §9.6 does not name ${member} of ${type}`);
    }
  }
});
