import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { refuseIfRetired, wipeStateDir } from '../../agent/retirement.js';
import { isTsunaguError } from '../../protocol/errors.js';

function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-retire-unit-'));
  for (const name of ['keys.json', 'identity.json', 'bootstrap.json', 'desired.msg', 'status.json']) writeFileSync(join(dir, name), '{}');
  mkdirSync(join(dir, 'outbox'));
  writeFileSync(join(dir, 'outbox', 'seg-0'), 'queued');
  return dir;
}

test('the wipe leaves only the status file and the retired marker', () => {
  const dir = stateDir();
  try {
    refuseIfRetired(dir); // not retired yet: no throw
    const removed = wipeStateDir(dir, { v: 1, deviceId: 'd-0123456789abcdef0123', fleetId: 'acme', at: 1_750_000_000_000 });
    assert.deepEqual(removed.sort(), ['bootstrap.json', 'desired.msg', 'identity.json', 'keys.json', 'outbox']);
    assert.deepEqual(readdirSync(dir).sort(), ['retired.json', 'status.json']);
    assert.throws(() => refuseIfRetired(dir), (e: unknown) => isTsunaguError(e, 'CONFIG') && /d-0123456789abcdef0123 of fleet acme was retired at 2025-06-15T15:06:40.000Z/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unreadable marker still keeps the agent stopped, and is left where it is', () => {
  const dir = stateDir();
  try {
    writeFileSync(join(dir, 'retired.json'), 'not json');
    assert.throws(() => refuseIfRetired(dir), (e: unknown) => isTsunaguError(e, 'CONFIG') && /this device was retired/.test(e.message));
    assert.ok(readdirSync(dir).includes('retired.json'), "readdirSync(dir).includes('retired.json')");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
