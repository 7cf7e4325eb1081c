import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { ImageRecords, USE_RESOLUTION_MS } from '../../../agent/images/image-records.js';

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsunagu-images-'));
  path = join(dir, 'images.json');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('pulls and uses are kept across a restart; nothing is written until something changes', () => {
  const records = new ImageRecords(path);
  records.save();
  assert.equal(existsSync(path), false, 'no change, no file');
  records.notePulled('app:1', 'sha256:a', 1000);
  records.noteUsed('sha256:a', 2000);
  records.save();
  const written = statSync(path).mtimeMs;
  records.notePulled('app:1', 'sha256:a', 3000); // the same image again: no change
  records.save();
  assert.equal(statSync(path).mtimeMs, written);
  assert.deepEqual(new ImageRecords(path).records, [{ ref: 'app:1', imageId: 'sha256:a', pulledAt: 1000, lastUsedAt: 2000 }]);
});

test('last use moves at most once per resolution period, so a crash loop does not rewrite the file', () => {
  const records = new ImageRecords(path);
  records.notePulled('app:1', 'sha256:a', 0);
  records.noteUsed('sha256:a', 10);
  records.save();
  const before = readFileSync(path, 'utf8');
  records.noteUsed('sha256:a', 10 + USE_RESOLUTION_MS - 1);
  records.save();
  assert.equal(readFileSync(path, 'utf8'), before);
  records.noteUsed('sha256:a', 10 + USE_RESOLUTION_MS);
  assert.equal(records.records[0]?.lastUsedAt, 10 + USE_RESOLUTION_MS);
});

test('a reference pulled again to new content keeps its use history under the new id', () => {
  const records = new ImageRecords(path);
  records.notePulled('app:latest', 'sha256:a', 1);
  records.noteUsed('sha256:a', 5);
  records.notePulled('app:latest', 'sha256:b', 9);
  assert.deepEqual(records.records, [{ ref: 'app:latest', imageId: 'sha256:b', pulledAt: 9, lastUsedAt: 5 }]);
});

test('a newly synced version makes the one before it the rollback version', () => {
  const records = new ImageRecords(path);
  records.noteSynced('1', ['a:1']);
  records.noteSynced('1', ['a:1']);
  assert.equal(records.previous, null);
  records.noteSynced('2', ['a:2', 'b:1', 'a:2']);
  assert.deepEqual([records.applied, records.previous], [{ version: '2', refs: ['a:2', 'b:1'] }, { version: '1', refs: ['a:1'] }]);
});

test('forget drops records; a corrupt file is moved aside and the records start empty', () => {
  const records = new ImageRecords(path);
  records.notePulled('a:1', 'x', 1);
  records.notePulled('b:1', 'y', 1);
  records.forget(['a:1']);
  assert.deepEqual(records.records.map((r) => r.ref), ['b:1']);
  writeFileSync(path, '{"v":1,"images":[{"ref":');
  assert.deepEqual(new ImageRecords(path).records, []);
  assert.equal(existsSync(`${path}.bad`), true);
});
