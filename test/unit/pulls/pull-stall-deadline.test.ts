import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PullProgress } from '../../../agent/supervisor/container-runtime.js';
import { withStallDeadline } from '../../../agent/pulls/pull-stall-deadline.js';
import { isTsunaguError, TsunaguError } from '../../../protocol/errors.js';

const event = (status: string, current?: number, total = 1000): PullProgress => ({
  image: 'r/a:1', currentBytes: current ?? 0, totalBytes: total, status, id: 'a1', progress: current === undefined ? null : { current, total },
});

/** A fake engine pull: sends `events` one every `everyMs`, then ends; ends as cancelled when its signal aborts, like the runtime. */
function enginePull(events: PullProgress[], everyMs: number, seen: { aborted?: boolean } = {}) {
  return (signal: AbortSignal, onProgress: (p: PullProgress) => void): Promise<void> => new Promise((resolve, reject) => {
    let i = 0;
    const timer = setInterval(() => {
      const e = events[i++];
      if (e === undefined) { clearInterval(timer); resolve(); return; }
      onProgress(e);
    }, everyMs);
    signal.addEventListener('abort', () => { clearInterval(timer); seen.aborted = true; reject(new TsunaguError('CANCELLED', 'pull r/a:1: cancelled')); }, { once: true });
  });
}

test('a pull that keeps moving is never cut, however long it takes', async () => {
  const events = Array.from({ length: 12 }, (_, i) => event('Downloading', (i + 1) * 80));
  const reported: string[] = [];
  await withStallDeadline('r/a:1', 60, new AbortController().signal, (p) => reported.push(p.status), enginePull(events, 20));
  assert.equal(reported.length, 12, 'every event still reaches the caller');
});

/**
 * A fake engine pull that sends `burst` at once, then one `then` every 20 ms
 * for 200 ticks, and then waits without ending. The burst ends in events
 * that are not progress, so what the deadline sees last is such an event
 * whatever the machine's load does to timers; `seen.ticks` counts the events
 * sent after the burst.
 */
function burstThenRepeat(burst: PullProgress[], then: PullProgress, seen: { aborted?: boolean; ticks: number }) {
  return (signal: AbortSignal, onProgress: (p: PullProgress) => void): Promise<void> => new Promise((_resolve, reject) => {
    setImmediate(() => { for (const e of burst) onProgress(e); });
    const timer = setInterval(() => {
      if (seen.ticks >= 200) { clearInterval(timer); return; }
      seen.ticks += 1;
      onProgress(then);
    }, 20);
    signal.addEventListener('abort', () => { clearInterval(timer); seen.aborted = true; reject(new TsunaguError('CANCELLED', 'pull r/a:1: cancelled')); }, { once: true });
  });
}

test('a pull that only waits and starts over fails with PULL_FAILED once the deadline passes, and the engine pull is aborted', async () => {
  const retry = event('Retrying in 1 second');
  const burst = [event('Downloading', 1000), event('Verifying Checksum'), event('Retrying in 2 seconds'), retry, event('Downloading', 10), event('Downloading', 900), retry, retry];
  const seen = { aborted: false, ticks: 0 };
  const began = Date.now();
  await assert.rejects(withStallDeadline('r/a:1', 150, new AbortController().signal, undefined, burstThenRepeat(burst, retry, seen)), (e) => {
    assert.ok(isTsunaguError(e, 'PULL_FAILED'), String(e));
    assert.match(e.message, /^pull r\/a:1: no progress for 0 s \(last: a1: Retrying in 1 second\)/);
    return true;
  });
  assert.ok(seen.aborted, 'the pull itself was aborted');
  // Retries are not progress: the deadline ran from the burst, not from the last retry (which
  // would have let all 200 be sent). Timers never fire early, so the cut is not before 150 ms.
  assert.ok(seen.ticks < 200, `cut after ${seen.ticks} retries`);
  assert.ok(Date.now() - began >= 150, `cut after ${Date.now() - began} ms`);
});

test('a pull the engine never answers is cut too: the deadline runs from the start', async () => {
  await assert.rejects(withStallDeadline('r/a:1', 50, new AbortController().signal, undefined, enginePull([], 10_000)), (e) => isTsunaguError(e, 'PULL_FAILED') && /no answer from the engine yet/.test(e.message));
});

test('an abort from outside (shutdown, a newer desired state) passes through as it is', async () => {
  const outside = new AbortController();
  setTimeout(() => outside.abort(), 30);
  await assert.rejects(withStallDeadline('r/a:1', 10_000, outside.signal, undefined, enginePull([], 10_000)), (e) => isTsunaguError(e, 'CANCELLED'));
});

test('0 turns the deadline off: the pull runs under the caller\'s own signal', async () => {
  const signal = new AbortController().signal;
  let given: AbortSignal | undefined;
  await withStallDeadline('r/a:1', 0, signal, undefined, (s) => { given = s; return Promise.resolve(); });
  assert.equal(given, signal);
});
