import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../../common/logger.js';
import { DesiredChannel } from '../../../agent/desired/desired-channel.js';
import { DesiredStore } from '../../../agent/desired/desired-store.js';
import { utf8 } from '../../../protocol/bytes.js';
import type { DeviceSettings } from '../../../protocol/device-settings.js';
import type { SignedPayload } from '../../../protocol/envelope.js';
import { generateKeyPairs } from '../../../protocol/keys.js';

// The device settings a deployment may set travel in the desired state: the channel hands over
// those of each version it accepts (and none when the version carries none), and refuses a
// version whose settings are out of bounds like any other schema error.
function message(version: number, settings?: unknown): Uint8Array {
  const data = { version, compose: { services: { a: { image: 'img:1' } } }, ...(settings === undefined ? {} : { settings }) };
  const payload: SignedPayload = { typ: 'desired', id: '0'.repeat(32), to: 'dev-1', iat: 0, exp: 0, ctr: version, data };
  return utf8(JSON.stringify(payload));
}

test('the settings of each accepted version are applied; a version without any gives the device its own back; bad ones are refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'desired-settings-'));
  const applied: (DeviceSettings | undefined)[] = [];
  const events: Record<string, unknown>[] = [];
  try {
    const channel = new DesiredChannel({
      verifier: { verifyAddressed: (bytes) => JSON.parse(Buffer.from(bytes).toString()) as SignedPayload },
      boxSecretKey: generateKeyPairs().boxSecretKey,
      store: new DesiredStore(dir, silentLogger()),
      supervisor: { apply: (_doc, version) => Promise.resolve({ version, status: 'applying', services: [], error: null }), state: () => ({ version: null, status: 'applying', services: [], error: null }) },
      deviceLabels: new Set(),
      setRegistries: () => undefined,
      applySettings: (s) => applied.push(s),
      publishState: () => undefined,
      emitEvent: (e) => events.push(e),
      logger: silentLogger(),
    });
    await channel.deliver(message(1, { metricsIntervalMs: 60_000 }));
    await channel.deliver(message(2));
    await channel.deliver(message(3, { metricsIntervalMs: 10 }));
    assert.deepEqual(applied, [{ metricsIntervalMs: 60_000 }, undefined]);
    assert.deepEqual(events.filter((e) => e.type === 'message-refused').map((e) => e.code), ['SCHEMA']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
