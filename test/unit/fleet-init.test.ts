import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isTsunaguError } from '../../protocol/errors.js';
import { runInit } from '../../provisioning/enrollment-verbs.js';
import { createFleetDir } from '../../provisioning/fleet-dir.js';

test('init on a directory that already holds a fleet fails before it touches the broker', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-fleet-'));
  try {
    createFleetDir(dir, {
      fleetId: 'acme',
      broker: { url: 'mqtt://127.0.0.1:1', protocolVersion: 5, username: 'tsunagu-fleet-acme', password: 'old-password', kind: 'mosquitto' },
      claim: { mode: 'approve' },
    });
    const before = readFileSync(join(dir, 'fleet.json'), 'utf8');
    // Port 1 has no broker: reaching for it would fail with a connection error, not CONFIG.
    await assert.rejects(
      runInit({
        dir, fleetId: 'acme', broker: 'mqtt://127.0.0.1:1', adminUser: 'admin', adminPassword: 'x',
        claim: 'approve', serials: '', mqttVersion: '5', generatedToken: 'unused',
      }),
      (e) => isTsunaguError(e, 'CONFIG'),
    );
    assert.equal(readFileSync(join(dir, 'fleet.json'), 'utf8'), before);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
