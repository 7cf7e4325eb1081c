import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PullProgress } from '../../../agent/supervisor/container-runtime.js';
import { withStallDeadline } from '../../../agent/supervisor/pull-stall-deadline.js';
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

test('a pull that only waits and starts over fails with PULL_FAILED once the deadline passes, and the engine pull is aborted', async () => {
  const events = [event('Downloading', 1000), event('Verifying Checksum'), event('Retrying in 2 seconds'), event('Retrying in 1 second'), event('Downloading', 10), event('Downloading', 900),
    ...Array.from({ length: 20 }, () => event('Retrying in 1 second'))];
  const seen: { aborted?: boolean } = {};
  const began = Date.now();
  await assert.rejects(withStallDeadline('r/a:1', 150, new AbortController().signal, undefined, enginePull(events, 20, seen)), (e) => {
    assert.ok(isTsunaguError(e, 'PULL_FAILED'), String(e));
    assert.match(e.message, /^pull r\/a:1: no progress for 0 s \(last: a1: Retrying in 1 second\)/);
    return true;
  });
  assert.ok(seen.aborted, 'the pull itself was aborted');
  // Last progress at ~40 ms (Verifying Checksum): cut about 150 ms later.
  assert.ok(Date.now() - began >= 150 && Date.now() - began < 1000, `cut after ${Date.now() - began} ms`);
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
