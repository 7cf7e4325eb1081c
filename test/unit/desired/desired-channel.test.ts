import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { silentLogger } from '../../../common/logger.js';
import { DesiredChannel } from '../../../agent/desired/desired-channel.js';
import { DesiredStore } from '../../../agent/desired/desired-store.js';
import type { SupervisorState } from '../../../agent/supervisor/supervisor.js';
import { utf8 } from '../../../protocol/bytes.js';
import type { ReportedState } from '../../../protocol/desired.js';
import type { SignedPayload } from '../../../protocol/envelope.js';
import { TsunaguError } from '../../../protocol/errors.js';
import { generateKeyPairs } from '../../../protocol/keys.js';
import type { DesiredState } from '../../../protocol/compose/desired-service.js';
import type { DeviceParseOptions } from '../../../agent/supervisor/device-defaults.js';

// The channel's version rules with a fake verifier and a fake supervisor:
// signatures and the engine are covered by the integration tests.
const device = generateKeyPairs();
let dir: string;
let applied: string[];
let handed: DesiredState[];
let states: ReportedState[];
let events: Record<string, unknown>[];
let channel: DesiredChannel;
let store: DesiredStore;

/** The fake "signature": the bytes are the payload's JSON; `bad` fails verification. */
function message(version: number, compose: Record<string, unknown> = { services: { a: { image: 'img:1' } } }, to = 'dev-1'): Uint8Array {
  const payload: SignedPayload = { typ: 'desired', id: '0'.repeat(32), to, iat: 0, exp: 0, ctr: version, data: { version, compose } };
  return utf8(JSON.stringify(payload));
}

const idle: SupervisorState = { version: null, status: 'applying', services: [], error: null };

let refetches: number;

function makeChannel(restoreProven?: (desired: DesiredState, version: string) => void, parseOptions?: DeviceParseOptions): DesiredChannel {
  return new DesiredChannel({
    onPersistedUnusable: () => { refetches++; },
    verifier: {
      verifyAddressed: (bytes) => {
        const text = Buffer.from(bytes).toString();
        if (text === 'bad') throw new TsunaguError('BAD_SIGNATURE');
        const payload = JSON.parse(text) as SignedPayload;
        if (payload.to !== 'dev-1') throw new TsunaguError('WRONG_DEVICE', `addressed to ${payload.to}`);
        return payload;
      },
    },
    boxSecretKey: device.boxSecretKey,
    store,
    supervisor: {
      apply: (desired, version) => { applied.push(version); handed.push(desired); return Promise.resolve({ ...idle, version }); },
      state: () => idle,
      ...(restoreProven === undefined ? {} : { restoreProven }),
    },
    deviceLabels: new Set(),
    setRegistries: () => undefined,
    publishState: (s) => states.push(s),
    emitEvent: (e) => events.push(e),
    logger: silentLogger(),
    clock: { now: () => 42 },
    ...(parseOptions === undefined ? {} : { parseOptions }),
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'desired-'));
  applied = [];
  handed = [];
  states = [];
  events = [];
  refetches = 0;
  store = new DesiredStore(dir, silentLogger());
  channel = makeChannel();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('a higher version is applied and persisted; the same again is ignored; a lower one refused', async () => {
  await channel.deliver(message(2));
  await channel.deliver(message(2));
  await channel.deliver(message(1));
  assert.deepEqual(applied, ['2']);
  assert.deepEqual(Buffer.from(store.loadMessage() ?? []), Buffer.from(message(2)));
  assert.deepEqual(events.filter((e) => e.type === 'desired-refused').map((e) => [e.version, e.code]), [[1, 'OLD_VERSION']]);
  await channel.deliver(message(3));
  assert.deepEqual(applied, ['2', '3']);
});

test('a refused document is reported as refused, not persisted, not applied', async () => {
  await channel.deliver(message(1));
  await channel.deliver(message(2, { services: { a: { image: 'img:1', build: '.' } } }));
  assert.deepEqual(applied, ['1']);
  assert.deepEqual(Buffer.from(store.loadMessage() ?? []), Buffer.from(message(1)));
  const last = states.at(-1);
  assert.equal(last?.status, 'refused');
  assert.equal(last?.desiredVersion, 2);
  assert.match(last?.error?.message ?? '', /services\.a\.build/);
  assert.ok(last?.error?.services?.a !== undefined, 'last?.error?.services?.a !== undefined');
});

test('unverifiable or misaddressed messages change nothing', async () => {
  await channel.deliver(utf8('bad'));
  await channel.deliver(message(5, undefined, 'dev-2'));
  assert.deepEqual(applied, []);
  assert.equal(store.loadMessage(), undefined);
  assert.deepEqual(events.map((e) => e.code), ['BAD_SIGNATURE', 'WRONG_DEVICE']);
});

test('restore applies the persisted message again; a new channel (a reboot) does too, and then ignores its redelivery', async () => {
  assert.equal(await channel.restore(), null);
  await channel.deliver(message(4));
  assert.equal(await channel.restore(), 4);
  const rebooted = makeChannel();
  assert.equal(await rebooted.restore(), 4);
  await rebooted.deliver(message(4));
  assert.deepEqual(applied, ['4', '4', '4']);
});

test('a persisted message that no longer verifies is moved aside and fetched again; a bad broker message is not', async () => {
  await channel.deliver(utf8('bad'));
  assert.equal(refetches, 0, 'a refused broker message is only refused');
  writeFileSync(join(dir, 'desired.msg'), Buffer.alloc(64));
  assert.equal(await makeChannel().restore(), null);
  assert.equal(refetches, 1);
  assert.equal(store.loadMessage(), undefined);
  assert.ok(existsSync(join(dir, 'desired.msg.bad')), "existsSync(join(dir, 'desired.msg.bad'))");
  assert.deepEqual(applied, []);
});

test('the applied version follows the supervisor reaching synced on the accepted version', async () => {
  await channel.deliver(message(7));
  channel.onSupervisorState({ version: '7', status: 'applying', services: [], error: null });
  assert.equal(states.at(-1)?.appliedVersion, null);
  channel.onSupervisorState({ version: '7', status: 'synced', services: [], error: null });
  assert.deepEqual([states.at(-1)?.desiredVersion, states.at(-1)?.appliedVersion, states.at(-1)?.status], [7, 7, 'synced']);
});

test('a proven version is kept as signed and handed back at the next start, before the desired state is applied', async () => {
  await channel.deliver(message(2, { services: { a: { image: 'img:2' } } }));
  channel.onProven('1'); // not the version held: nothing kept
  assert.equal(store.loadProven(), undefined);
  channel.onProven('2');
  assert.deepEqual(Buffer.from(store.loadProven() ?? []), Buffer.from(message(2, { services: { a: { image: 'img:2' } } })));
  await channel.deliver(message(3));

  const order: string[] = [];
  const restarted = makeChannel((desired, version) => order.push(`proven ${version} ${desired.services.map((x) => x.image).join()}`));
  applied = [];
  await restarted.restore();
  order.push(...applied.map((v) => `apply ${v}`));
  assert.deepEqual(order, ['proven 2 img:2', 'apply 3']);
  restarted.onSupervisorState({ ...idle, version: '3' });
  assert.equal(states.at(-1)?.appliedVersion, 2, 'what ran before the restart is reported applied');
});

test('a kept proven version that no longer verifies is moved aside; the desired state is applied all the same', async () => {
  await channel.deliver(message(2));
  writeFileSync(join(dir, 'proven.msg'), 'bad');
  const handed: string[] = [];
  const restarted = makeChannel((_doc, version) => handed.push(version));
  applied = [];
  await restarted.restore();
  assert.deepEqual(handed, []);
  assert.deepEqual(applied, ['2']);
  assert.equal(existsSync(join(dir, 'proven.msg.bad')), true);
  assert.equal(existsSync(join(dir, 'proven.msg')), false);
});

test('a desired message without ctr is applied: protocol.md §9.1 requires ctr of commands only', async () => {
  const payload: SignedPayload = { typ: 'desired', id: '1'.repeat(32), to: 'dev-1', iat: 0, exp: 0, data: { version: 5, compose: { services: { a: { image: 'img:1' } } } } };
  await channel.deliver(utf8(JSON.stringify(payload)));
  assert.deepEqual(applied, ['5']);
  assert.deepEqual(events.filter((e) => e.type === 'message-refused' || e.type === 'desired-refused'), []);
});

test('desired-accepted names its source: broker for a delivery, disk for the persisted message; restore() gives the version reread-desired reports as reapplied', async () => {
  assert.equal(await channel.restore(), null, 'nothing persisted: reapplied is null');
  await channel.deliver(message(7));
  const fresh = makeChannel();
  assert.equal(await fresh.restore(), 7);
  assert.deepEqual(events.filter((e) => e.type === 'desired-accepted').map((e) => [e.version, e.source]), [[7, 'broker'], [7, 'disk']]);
});

test('the document is parsed once, here: the supervisor gets it with the device\'s log caps and defaults filled in', async () => {
  const parsing = makeChannel(undefined, { containerLogs: { maxSize: '2m', maxFiles: 2 }, deviceDefaults: { memoryLimitBytes: 64 * 1024 * 1024 } });
  await parsing.deliver(message(1, { services: { a: { image: 'img:1' }, b: { image: 'img:1', mem_limit: '32m' } } }));
  assert.deepEqual(handed.map((d) => d.services.map((x) => [x.name, x.limits.memoryBytes, x.logging.options['max-size']])), [[['a', 64 * 1024 * 1024, '2m'], ['b', 32 * 1024 * 1024, '2m']]]);
});

test('a kept proven version that verifies but no longer parses is kept, and only a rollback is lost', async () => {
  writeFileSync(join(dir, 'proven.msg'), message(1, { services: { a: { image: 'img:1', build: '.' } } }));
  const restored: string[] = [];
  await makeChannel((_desired, version) => restored.push(version)).restore();
  assert.deepEqual(restored, []);
  assert.equal(existsSync(join(dir, 'proven.msg')), true);
});
