import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PullAdvance, type PullEvent } from '../../../agent/pulls/pull-advance.js';

const ev = (id: string | null, status: string, current?: number, total?: number): PullEvent => ({
  id, status, progress: total === undefined ? null : { current: current ?? 0, total },
});

const moves = (events: PullEvent[], advance = new PullAdvance()): boolean[] => events.map((e) => advance.advanced(e));

test('a normal pull moves at every new byte and every new step of a layer', () => {
  assert.deepEqual(moves([
    ev('1', 'Pulling from faults/blob'), ev('a1', 'Pulling fs layer'), ev('a1', 'Downloading', 100, 1000), ev('a1', 'Downloading', 600, 1000),
    ev('a1', 'Verifying Checksum'), ev('a1', 'Download complete'), ev('a1', 'Extracting', 300, 1000), ev('a1', 'Extracting', 1000, 1000),
    ev('a1', 'Pull complete'), ev(null, 'Digest: sha256:ab'), ev(null, 'Status: Downloaded newer image for r/a:1'),
  ]), [true, true, true, true, true, true, true, true, true, true, true]);
});

test('the same event again, or the same byte count again, is no progress', () => {
  assert.deepEqual(moves([ev('a1', 'Waiting'), ev('a1', 'Waiting'), ev('a1', 'Downloading', 5, 10), ev('a1', 'Downloading', 5, 10)]), [true, false, true, false]);
});

test('a layer the engine downloads again from the start does not move until it passes where the last attempt got', () => {
  const advance = new PullAdvance();
  assert.deepEqual(moves([ev('a1', 'Downloading', 400, 1000), ev('a1', 'Downloading', 1000, 1000), ev('a1', 'Verifying Checksum')], advance), [true, true, true]);
  // The countdown before the next attempt, then the same layer from byte 0 again: waiting, not moving.
  assert.deepEqual(moves([
    ev('a1', 'Retrying in 5 seconds'), ev('a1', 'Retrying in 4 seconds'), ev('a1', 'Retrying in 1 second'),
    ev('a1', 'Downloading', 0, 1000), ev('a1', 'Downloading', 999, 1000), ev('a1', 'Downloading', 1000, 1000), ev('a1', 'Verifying Checksum'),
  ], advance), [false, false, false, false, false, false, false]);
});

test('a download the engine resumes after a cut moves as soon as it gets new bytes', () => {
  const advance = new PullAdvance();
  assert.deepEqual(moves([ev('a1', 'Downloading', 600, 1000)], advance), [true]);
  // Resumed at byte 600: the engine counts from 0 over the 400 bytes left.
  assert.deepEqual(moves([ev('a1', 'Retrying in 1 second'), ev('a1', 'Downloading', 0, 400), ev('a1', 'Downloading', 100, 400)], advance), [false, false, true]);
});

test('layers are counted apart: one layer finishing while another stands still is progress', () => {
  const advance = new PullAdvance();
  assert.deepEqual(moves([ev('a1', 'Downloading', 10, 100), ev('b2', 'Downloading', 10, 100), ev('b2', 'Downloading', 10, 100), ev('a1', 'Download complete')], advance), [true, true, false, true]);
});
