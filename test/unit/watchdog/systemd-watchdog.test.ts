import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import { silentLogger } from '../../../common/logger.js';
import { HEALTHY, judgeLoop, watchdogTiming } from '../../../agent/watchdog/loop-health.js';
import { systemdNotifyTarget } from '../../../agent/watchdog/systemd-env.js';
import type { NotifyFields } from '../../../agent/watchdog/systemd-notifier.js';
import { SystemdWatchdog } from '../../../agent/watchdog/watchdog.js';

describe('what systemd asks, from the environment', () => {
  test('no NOTIFY_SOCKET: nothing to tell anyone', () => {
    assert.equal(systemdNotifyTarget({}, 42), null);
    assert.equal(systemdNotifyTarget({ NOTIFY_SOCKET: '', WATCHDOG_USEC: '1000000' }, 42), null);
    assert.equal(systemdNotifyTarget({ NOTIFY_SOCKET: 'relative/path' }, 42), null);
  });

  test('a socket without a watchdog: readiness and status only', () => {
    assert.deepEqual(systemdNotifyTarget({ NOTIFY_SOCKET: '/run/systemd/notify' }, 42), { socket: '/run/systemd/notify', watchdogMs: null });
    assert.deepEqual(systemdNotifyTarget({ NOTIFY_SOCKET: '@/org/freedesktop/systemd1/notify' }, 42), { socket: '@/org/freedesktop/systemd1/notify', watchdogMs: null });
  });

  test('a watchdog for this PID, or for no PID in particular', () => {
    assert.deepEqual(systemdNotifyTarget({ NOTIFY_SOCKET: '/n', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42), { socket: '/n', watchdogMs: 30_000 });
    assert.deepEqual(systemdNotifyTarget({ NOTIFY_SOCKET: '/n', WATCHDOG_USEC: '2500' }, 42), { socket: '/n', watchdogMs: 2 });
  });

  test('a watchdog meant for another process, or unreadable, is not pinged', () => {
    assert.deepEqual(systemdNotifyTarget({ NOTIFY_SOCKET: '/n', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '7' }, 42), { socket: '/n', watchdogMs: null, ignored: 'WATCHDOG_PID=7 names another process' });
    for (const usec of ['0', '-5', '30s', '']) {
      assert.equal(systemdNotifyTarget({ NOTIFY_SOCKET: '/n', WATCHDOG_USEC: usec }, 42)?.watchdogMs, null, usec);
    }
  });
});

describe('the health decision', () => {
  const limits = { maxStallMs: 2000, maxReconcileMs: 600_000 };

  test('a loop that fires on time, idle or reconciling within the bound, is healthy', () => {
    assert.deepEqual(judgeLoop(HEALTHY, { lagMs: 0, reconcilingForMs: null }, limits), HEALTHY);
    assert.deepEqual(judgeLoop(HEALTHY, { lagMs: 2000, reconcilingForMs: 600_000 }, limits), HEALTHY, 'the bounds themselves are allowed');
  });

  test('a stall beyond the bound is stuck, with how long', () => {
    assert.deepEqual(judgeLoop(HEALTHY, { lagMs: 2001.4, reconcilingForMs: null }, limits), { stuck: true, reason: 'main loop stalled for 2001 ms (limit 2000 ms)' });
  });

  test('a reconcile pass beyond the bound is stuck', () => {
    assert.deepEqual(judgeLoop(HEALTHY, { lagMs: 3, reconcilingForMs: 601_000 }, limits), {
      stuck: true, reason: 'a reconcile pass has run for 601 s (limit 600 s): an engine call that does not return',
    });
  });

  test('stuck is final: a loop that runs again does not earn the pings back', () => {
    const stuck = judgeLoop(HEALTHY, { lagMs: 9000, reconcilingForMs: null }, limits);
    assert.equal(judgeLoop(stuck, { lagMs: 0, reconcilingForMs: null }, limits), stuck);
  });

  test('timing: ping at half the timeout, probe at a quarter (at most every second), stall bound the ping interval unless set', () => {
    assert.deepEqual(watchdogTiming(30_000, undefined), { pingEveryMs: 15_000, probeEveryMs: 1000, maxStallMs: 15_000 });
    assert.deepEqual(watchdogTiming(2000, undefined), { pingEveryMs: 1000, probeEveryMs: 500, maxStallMs: 1000 });
    assert.deepEqual(watchdogTiming(4000, 3000), { pingEveryMs: 2000, probeEveryMs: 1000, maxStallMs: 3000 });
    assert.equal(watchdogTiming(100, undefined).probeEveryMs, 50);
  });
});

describe('the watchdog on a fake clock', () => {
  let now: number;
  let sent: { at: number; fields: NotifyFields }[];
  let stuckReasons: string[];
  let reconciling: number | null;

  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout'] });
    now = 0;
    sent = [];
    stuckReasons = [];
    reconciling = null;
  });
  afterEach(() => mock.timers.reset());

  function watchdog(watchdogMs: number | null, status = 'link online'): SystemdWatchdog {
    return new SystemdWatchdog({
      target: { socket: '/n', watchdogMs },
      notifier: { send: (fields) => { sent.push({ at: now, fields }); return Promise.resolve(); } },
      limits: { maxReconcileMs: 60_000 },
      reconcilingForMs: () => reconciling,
      status: () => status,
      onStuck: (reason) => stuckReasons.push(reason),
      logger: silentLogger(),
      now: () => now,
    });
  }

  /** Time passes with the loop free: every timer due runs on time. */
  function run(ms: number, step = 250): void {
    for (let t = 0; t < ms; t += step) {
      now += step;
      mock.timers.tick(step);
    }
  }

  const pings = (): number[] => sent.filter((s) => s.fields.WATCHDOG === '1').map((s) => s.at);

  test('pings at once, then every half timeout; READY and STOPPING carry a status', async () => {
    const w = watchdog(4000);
    w.start();
    await w.ready();
    run(9000);
    assert.deepEqual(pings(), [0, 2000, 4000, 6000, 8000]);
    assert.deepEqual(sent[0]?.fields, { WATCHDOG: '1', STATUS: 'link online' });
    assert.deepEqual(sent[1]?.fields, { READY: '1', STATUS: 'link online' });
    assert.deepEqual(sent[2]?.fields, { WATCHDOG: '1' }, 'an unchanged status is not sent again');
    await w.stopping();
    run(5000);
    assert.deepEqual(pings(), [0, 2000, 4000, 6000, 8000], 'no ping after STOPPING');
    assert.deepEqual(sent.at(-1)?.fields, { STOPPING: '1', STATUS: 'stopping' });
  });

  test('without a watchdog: READY and STOPPING, never a ping, no timer', async () => {
    const w = watchdog(null);
    w.start();
    await w.ready();
    run(10_000);
    await w.stopping();
    assert.deepEqual(sent.map((s) => Object.keys(s.fields)), [['READY', 'STATUS'], ['STOPPING', 'STATUS']]);
  });

  test('a stall beyond the bound ends the pings for good and says why', () => {
    const w = watchdog(4000);
    w.start();
    run(4000);
    assert.deepEqual(pings(), [0, 2000, 4000]);
    // The loop is blocked for 2.5 s: no timer runs meanwhile; the first one after it is late.
    now += 2500;
    run(20_000);
    assert.deepEqual(pings(), [0, 2000, 4000]);
    assert.equal(w.stuck, true);
    assert.deepEqual(stuckReasons, ['main loop stalled for 2500 ms (limit 2000 ms)']);
    assert.match(sent.at(-1)?.fields.STATUS ?? '', /^stuck: main loop stalled for 2500 ms \(limit 2000 ms\); watchdog pings stopped$/);
  });

  test('a stall within the bound is tolerated', () => {
    const w = watchdog(4000);
    w.start();
    run(1000);
    now += 1900;
    run(6000);
    assert.equal(w.stuck, false);
    assert.equal(pings().length >= 4, true, JSON.stringify(pings()));
    const gaps = pings().slice(1).map((t, i) => t - (pings()[i] ?? 0));
    assert.ok(gaps.every((g) => g < 4000), `never a gap systemd would kill for: ${JSON.stringify(gaps)}`);
  });

  test('a reconcile pass that does not end stops the pings while the loop itself runs', () => {
    const w = watchdog(4000);
    w.start();
    reconciling = 59_000;
    run(4000);
    assert.equal(w.stuck, false);
    reconciling = 61_000;
    run(8000);
    assert.equal(w.stuck, true);
    assert.equal(stuckReasons.length, 1);
    assert.match(stuckReasons[0] ?? '', /reconcile pass has run for 61 s/);
    assert.ok((pings().at(-1) ?? 0) <= 4250, '(pings().at(-1) ?? 0) <= 4250');
  });

  test('a status that changes rides on the next ping', () => {
    let status = 'enrolling';
    const w = new SystemdWatchdog({
      target: { socket: '/n', watchdogMs: 2000 },
      notifier: { send: (fields) => { sent.push({ at: now, fields }); return Promise.resolve(); } },
      limits: { maxReconcileMs: 60_000 }, reconcilingForMs: () => null, status: () => status, onStuck: () => undefined,
      logger: silentLogger(), now: () => now,
    });
    w.start();
    run(1000);
    status = 'link online';
    run(1000);
    assert.deepEqual(sent.map((s) => s.fields.STATUS).filter((x) => x !== undefined), ['enrolling', 'link online']);
  });
});
