import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { atomicTempName, atomicTempWriter, writeFileAtomic } from '../../common/atomic-file.js';
import { isLeftoverTemp, removeLeftoverTempFiles } from '../../agent/state/leftover-temp-files.js';

const LIVE = 4242;
const alive = (pid: number): boolean => pid === LIVE;

test('only the atomic writer\'s own temp names are leftovers, and only of a writer that is gone', () => {
  assert.equal(atomicTempWriter(atomicTempName('status.json', 812)), 812);
  assert.equal(isLeftoverTemp('.status.json.812.tmp', alive), true);
  assert.equal(isLeftoverTemp(`.status.json.${LIVE}.tmp`, alive), false, 'a write in progress');
  for (const name of ['status.json', 'notes.tmp', '.hidden.tmp', '.status.json.tmp', 'status.json.812.tmp', '.status.json.812.tmp.bak', '.x.12345678901.tmp']) {
    assert.equal(isLeftoverTemp(name, alive), false, name);
  }
});

test('a power cut\'s temp files are removed from the state directory and the outbox; everything else is kept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'leftovers-'));
  try {
    mkdirSync(join(dir, 'outbox'));
    mkdirSync(join(dir, 'outbox', 'deeper'));
    for (const name of ['.status.json.812.tmp', `.keys.json.${LIVE}.tmp`, 'notes.tmp', 'identity.json', '.identity.json.9.tmp']) writeFileSync(join(dir, name), 'x');
    for (const name of ['.outbox.idx.813.tmp', 'outbox-2.log']) writeFileSync(join(dir, 'outbox', name), 'x');
    writeFileSync(join(dir, 'outbox', 'deeper', '.far.json.814.tmp'), 'x');
    const removed = removeLeftoverTempFiles(dir, alive);
    assert.deepEqual(removed.sort(), [join(dir, '.identity.json.9.tmp'), join(dir, '.status.json.812.tmp'), join(dir, 'outbox', '.outbox.idx.813.tmp')].sort());
    assert.deepEqual(readdirSync(dir).sort(), [`.keys.json.${LIVE}.tmp`, 'identity.json', 'notes.tmp', 'outbox']);
    assert.deepEqual(readdirSync(join(dir, 'outbox')).sort(), ['deeper', 'outbox-2.log']);
    assert.deepEqual(readdirSync(join(dir, 'outbox', 'deeper')), ['.far.json.814.tmp'], 'one level down only: the state directory has no deeper writer');
    assert.deepEqual(removeLeftoverTempFiles(join(dir, 'missing'), alive), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the temp name the sweep recognises is the one writeFileAtomic uses', () => {
  const dir = mkdtempSync(join(tmpdir(), 'leftovers-'));
  try {
    // What a kill between write and rename leaves: the temp file of this very writer.
    writeFileSync(join(dir, atomicTempName('state.json', process.pid)), 'half');
    writeFileAtomic(join(dir, 'state.json'), 'whole');
    assert.deepEqual(readdirSync(dir).sort(), ['state.json'], 'the rename took the temp file of the same name');
    writeFileSync(join(dir, atomicTempName('state.json', 999_999_999)), 'half');
    assert.deepEqual(removeLeftoverTempFiles(dir, (pid) => pid === process.pid), [join(dir, atomicTempName('state.json', 999_999_999))]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
