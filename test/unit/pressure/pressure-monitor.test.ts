import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PressureMonitor, pressureSampleOf, type PressureEvent } from '../../../agent/pressure/pressure-monitor.js';
import type { PressurePolicyConfig } from '../../../agent/pressure/pressure-policy.js';
import { MetricsSampler } from '../../../agent/resources/metrics-sampler.js';
import type { RawSample, ResourceProbe } from '../../../agent/resources/probe.js';
import type { TierEvictions } from '../../../agent/supervisor/evictions.js';

const MiB = 1024 * 1024;
const CONFIG: PressurePolicyConfig = {
  memory: { evictBelowPercent: 10, clearAbovePercent: 20 }, temperature: { evictAtCelsius: 80, clearAtCelsius: 70 },
  escalateAfterMs: 30_000, clearForMs: 60_000,
};

function raw(monotonicMs: number, availableMiB: number, temperatureC?: number): RawSample {
  return {
    at: 1_800_000_000_000 + monotonicMs, monotonicMs, uptimeSec: 100, cpuTicks: { busy: 1, total: 2 }, loadAvg: [0, 0, 0],
    memory: { totalBytes: 1000 * MiB, availableBytes: availableMiB * MiB }, filesystems: [], network: [],
    ...(temperatureC === undefined ? {} : { temperatureC }),
  };
}

function monitor(): { m: PressureMonitor; calls: TierEvictions[]; events: PressureEvent[] } {
  const calls: TierEvictions[] = [];
  const events: PressureEvent[] = [];
  const m = new PressureMonitor({ config: CONFIG, target: { setEvictions: (t) => calls.push(t) }, onEvent: (e) => events.push(e) });
  return { m, calls, events };
}

test('a metrics sample becomes a pressure sample on the monotonic clock; no thermal zone is null', () => {
  assert.deepEqual(pressureSampleOf(raw(5000, 300, 61.5)), { at: 5000, memoryAvailableBytes: 300 * MiB, memoryTotalBytes: 1000 * MiB, temperatureCelsius: 61.5 });
  assert.equal(pressureSampleOf(raw(5000, 300)).temperatureCelsius, null);
});

test('the supervisor is told only when the evicted tiers change; every change is an event with its readings', () => {
  const { m, calls, events } = monitor();
  const feed = (ms: number, mib: number, t?: number): void => m.observe(pressureSampleOf(raw(ms, mib, t)));
  feed(0, 500);
  feed(10_000, 50);   // entered: best-effort
  feed(20_000, 150);  // inside the band: nothing
  feed(40_000, 50);   // 30 s: escalated
  feed(50_000, 50);
  feed(60_000, 500);  // cleared
  feed(120_000, 500); // 60 s clear: normal back
  feed(180_000, 500); // best-effort back
  feed(190_000, 500);
  assert.deepEqual(calls, [
    { 'best-effort': 'memory available 50.0 MiB (5.0 % of 1000.0 MiB) below 10 %' },
    {
      'best-effort': 'memory available 50.0 MiB (5.0 % of 1000.0 MiB) below 10 %',
      normal: 'memory available 50.0 MiB (5.0 % of 1000.0 MiB) below 10 %; pressure lasted 30 s with best-effort services evicted',
    },
    { 'best-effort': 'memory available 50.0 MiB (5.0 % of 1000.0 MiB) below 10 %' },
    {},
  ]);
  assert.deepEqual(events.map((e) => [e.change, e.evicted.join(), e.memoryAvailableBytes / MiB]), [
    ['entered', 'best-effort', 50], ['escalated', 'normal,best-effort', 50], ['cleared', 'normal,best-effort', 500],
    ['restored', 'best-effort', 500], ['restored', '', 500],
  ]);
  assert.deepEqual(events[0], {
    type: 'pressure', change: 'entered', reason: 'memory available 50.0 MiB (5.0 % of 1000.0 MiB) below 10 %', evicted: ['best-effort'],
    memoryAvailableBytes: 50 * MiB, memoryTotalBytes: 1000 * MiB, temperatureCelsius: null,
  });
  assert.deepEqual(m.evicted(), {});
});

test('the metrics sampler hands every raw sample it takes to its observer: pressure reads nothing of its own', async () => {
  let reads = 0;
  const probe: ResourceProbe = {
    readStatic: () => Promise.reject(new Error('not used')),
    listDevEntries: () => Promise.resolve([]),
    sample: () => { reads += 1; return Promise.resolve(raw(reads * 10_000, reads === 2 ? 50 : 500)); },
  };
  const { m, calls } = monitor();
  const seen: RawSample[] = [];
  const sampler = new MetricsSampler(probe, (s) => { seen.push(s); m.observe(pressureSampleOf(s)); });
  const reports = [await sampler.next(), await sampler.next(), await sampler.next()];
  assert.equal(reads, 3);
  assert.deepEqual(seen.map((s) => s.memory.availableBytes / MiB), [500, 50, 500]);
  assert.deepEqual(reports.map((r) => r.memory.availableBytes / MiB), [500, 50, 500], 'the same samples make the reports');
  assert.deepEqual(calls.map((c) => Object.keys(c)), [['best-effort']]);
});
