import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FleetDatabase } from '../../provisioning/fleet-database.js';

test('registry.db and its -wal and -shm files are created 0600, whatever the umask', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-registry-mode-'));
  const previous = process.umask(0o022);
  try {
    const path = join(dir, 'registry.db');
    const database = new FleetDatabase(path);
    database.audit({ event: 'pending', code: 'CLAIM_PENDING', requestId: null, deviceId: null, serial: 'mode-test', message: 'a write, so the WAL exists' });
    for (const file of [path, `${path}-wal`, `${path}-shm`]) {
      assert.equal(statSync(file).mode & 0o777, 0o600, file);
    }
    database.close();
  } finally {
    process.umask(previous);
    rmSync(dir, { recursive: true, force: true });
  }
});
