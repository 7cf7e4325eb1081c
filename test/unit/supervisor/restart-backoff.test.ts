import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  backoffDelay, backoffStateSchema, clampToClock, isBackingOff, recordFailure, recordSuccess, type BackoffPolicy,
} from '../../../agent/supervisor/restart-backoff.js';

const policy: BackoffPolicy = { initialDelayMs: 1000, maxDelayMs: 8000, resetAfterMs: 60_000 };

test('delays double from the initial delay up to the cap', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 100, 5000].map((n) => backoffDelay(n, policy)), [0, 1000, 2000, 4000, 8000, 8000, 8000, 8000]);
});

test('failures accumulate; a duplicate key counts once; a long run resets the count', () => {
  let e = recordFailure(undefined, { at: 0, key: 'a', exitCode: 1, ranForMs: 10 }, policy);
  e = recordFailure(e, { at: 100, key: 'b', exitCode: 2, ranForMs: 10 }, policy);
  assert.deepEqual(e, { failures: 2, total: 2, nextAttemptAt: 2100, lastExitCode: 2, lastFailureKey: 'b', configHash: null });
  assert.equal(recordFailure(e, { at: 200, key: 'b' }, policy), e);
  assert.equal(isBackingOff(e, 2099), true);
  assert.equal(isBackingOff(e, 2100), false);
  const reset = recordFailure(e, { at: 5000, key: 'c', exitCode: 9, ranForMs: 60_000 }, policy);
  assert.deepEqual(reset, { failures: 1, total: 3, nextAttemptAt: 6000, lastExitCode: 9, lastFailureKey: 'c', configHash: null });
});

test('a failure of another configuration starts a fresh count; the back-off holds only its own configuration', () => {
  let e = recordFailure(undefined, { at: 0, key: 'a', configHash: 'v1' }, policy);
  e = recordFailure(e, { at: 0, key: 'b', configHash: 'v1' }, policy);
  assert.equal(e.failures, 2);
  assert.equal(isBackingOff(e, 100, 'v1'), true);
  assert.equal(isBackingOff(e, 100, 'v2'), false);
  assert.equal(isBackingOff(e, 100), true);
  e = recordFailure(e, { at: 0, key: 'c', configHash: 'v2' }, policy);
  assert.deepEqual([e.failures, e.total, e.configHash], [1, 3, 'v2']);
});

test('success forgets the count but keeps the total', () => {
  const e = recordFailure(undefined, { at: 0, key: 'a' }, policy);
  assert.deepEqual(recordSuccess(e), { failures: 0, total: 1, nextAttemptAt: 0, lastExitCode: null, lastFailureKey: 'a', configHash: null });
  assert.equal(recordSuccess(undefined), undefined);
});

test('a clock that jumped back cannot stretch a wait beyond the cap', () => {
  const e = recordFailure(undefined, { at: 1_800_000_000_000, key: 'a' }, policy);
  assert.equal(clampToClock(e, 0, policy).nextAttemptAt, 8000);
  assert.equal(clampToClock(e, 1_800_000_000_000, policy), e);
});

test('the state is plain JSON and round-trips through its schema', () => {
  const state = { web: recordFailure(undefined, { at: 5, key: 'k', exitCode: 3 }, policy) };
  assert.deepEqual(backoffStateSchema.parse(JSON.parse(JSON.stringify(state))), state);
});
