import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pullFailureCode } from '../../../agent/pulls/pull-failure.js';

test('content that does not match its digest is DIGEST_MISMATCH, in the words of Docker and of containerd', () => {
  const d = 'sha256:264644f71db37873ee0077135df9c6d6a55e73bdf553f850e9f2fec494648370';
  assert.equal(pullFailureCode(`pull r/a@${d}: manifest verification failed for digest ${d}`), 'DIGEST_MISMATCH');
  assert.equal(pullFailureCode(`pull r/a:1: filesystem layer verification failed for digest ${d}`), 'DIGEST_MISMATCH');
  assert.equal(pullFailureCode(`failed commit on ref "layer-${d}": unexpected commit digest sha256:00, expected ${d}: failed precondition`), 'DIGEST_MISMATCH');
});

test('a full disk is NO_SPACE, even when a layer failed to write for it', () => {
  assert.equal(pullFailureCode('pull r/a:1: write /var/lib/docker/tmp/GetImageBlob1: no space left on device'), 'NO_SPACE');
  assert.equal(pullFailureCode('failed to register layer: Error processing tar file(exit status 1): write /x: No space left on device'), 'NO_SPACE');
});

test('everything else is PULL_FAILED: a registry down, an unknown tag, refused credentials', () => {
  assert.equal(pullFailureCode('pull r/a:1: (HTTP code 500) server error - Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused'), 'PULL_FAILED');
  assert.equal(pullFailureCode('pull r/a:9: (HTTP code 404) unexpected - manifest for r/a:9 not found: manifest unknown'), 'PULL_FAILED');
  assert.equal(pullFailureCode('pull r/a:1: unauthorized: authentication required'), 'PULL_FAILED');
  // A digest named in a message is not a mismatch by itself.
  assert.equal(pullFailureCode('pull r/a@sha256:ab: manifest unknown for digest sha256:ab'), 'PULL_FAILED');
});
