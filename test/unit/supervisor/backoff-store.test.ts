import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileBackoffStore } from '../../../agent/supervisor/backoff-store.js';

test('back-off state round-trips through its file; a corrupt file is moved aside', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-backoff-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'backoff.json');
  const store = new FileBackoffStore(path);
  assert.equal(store.load(), undefined);
  const state = { web: { failures: 3, total: 7, nextAttemptAt: 123, lastExitCode: 3, lastFailureKey: 'abc@1', configHash: null } };
  store.save(state);
  assert.deepEqual(new FileBackoffStore(path).load(), state);

  writeFileSync(path, '\0\0\0{"web":');
  assert.equal(store.load(), undefined);
  assert.ok(existsSync(`${path}.bad`), 'existsSync(`${path}.bad`)');
});
