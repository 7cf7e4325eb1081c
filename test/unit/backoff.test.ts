import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { fullJitterDelay, sleep } from '../../common/backoff.js';

const policy = { baseMs: 1_000, capMs: 300_000 };
const justBelowOne = 1 - Number.EPSILON;

test('full jitter: the delay is 0 when the random draw is 0', () => {
  for (const attempt of [0, 1, 5, 50]) assert.equal(fullJitterDelay(attempt, policy, () => 0), 0);
});

test('full jitter: the window doubles from base until it reaches the cap', () => {
  const ceilings = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => fullJitterDelay(n, policy, () => justBelowOne) + 1);
  assert.deepEqual(ceilings, [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000]);
});

test('full jitter: a huge attempt number stays at the cap (no Infinity, no NaN)', () => {
  for (const attempt of [31, 100, 1_000_000, Number.MAX_SAFE_INTEGER]) {
    assert.equal(fullJitterDelay(attempt, policy, () => justBelowOne), 299_999);
  }
});

test('full jitter: always an integer in [0, min(cap, base·2ⁿ))', () => {
  fc.assert(
    fc.property(
      fc.nat({ max: 200 }),
      fc.integer({ min: 1, max: 60_000 }),
      fc.integer({ min: 1, max: 3_600_000 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (attempt, baseMs, capMs, draw) => {
        const delay = fullJitterDelay(attempt, { baseMs, capMs }, () => draw);
        const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
        assert.ok(Number.isInteger(delay), 'Number.isInteger(delay)');
        assert.ok(delay >= 0 && delay < ceiling, `${delay} not in [0, ${ceiling})`);
      },
    ),
    { numRuns: 2000 },
  );
});

test('full jitter: draws spread over the whole window', () => {
  // With Math.random, 2000 draws of attempt 3 (window 8 s) must reach both ends.
  const delays = Array.from({ length: 2000 }, () => fullJitterDelay(3, policy));
  assert.ok(Math.min(...delays) < 800, 'Math.min(...delays) < 800');
  assert.ok(Math.max(...delays) > 7_200, 'Math.max(...delays) > 7_200');
});

test('sleep resolves after the delay', async () => {
  const started = performance.now();
  await sleep(20);
  assert.ok(performance.now() - started >= 15, 'performance.now() - started >= 15');
});

test('sleep rejects at once with the reason when the signal is already aborted', async () => {
  const controller = new AbortController();
  const reason = new Error('stopping');
  controller.abort(reason);
  await assert.rejects(sleep(10_000, controller.signal), (e) => e === reason);
});

test('sleep rejects early with the reason when the signal aborts during the wait', async () => {
  const controller = new AbortController();
  const reason = new Error('stopping');
  const started = performance.now();
  setTimeout(() => controller.abort(reason), 10);
  await assert.rejects(sleep(10_000, controller.signal), (e) => e === reason);
  assert.ok(performance.now() - started < 5_000, 'performance.now() - started < 5_000');
});

test('full jitter with a floor: no window is narrower than the floor, and the cap still bounds it', () => {
  const link = { baseMs: 1_000, capMs: 60_000, floorMs: 10_000 };
  const ceilings = [0, 1, 2, 3, 4, 5, 6, 7].map((n) => fullJitterDelay(n, link, () => justBelowOne) + 1);
  assert.deepEqual(ceilings, [10_000, 10_000, 10_000, 10_000, 16_000, 32_000, 60_000, 60_000]);
  // A cap below the floor wins: a short-cap configuration stays short.
  assert.equal(fullJitterDelay(0, { baseMs: 100, capMs: 1_000, floorMs: 10_000 }, () => justBelowOne), 999);
});
