import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  evaluatePressure, evictedTiers, INITIAL_PRESSURE_STATE,
  type PressureChange, type PressurePolicyConfig, type PressureSample, type PressureState,
} from '../../../agent/pressure/pressure-policy.js';

const MiB = 1024 * 1024;
const TOTAL = 512 * MiB;
const SAMPLE_MS = 10_000;

const CONFIG: PressurePolicyConfig = {
  memory: { evictBelowPercent: 10, clearAbovePercent: 20 },
  temperature: { evictAtCelsius: 80, clearAtCelsius: 70 },
  escalateAfterMs: 30_000,
  clearForMs: 120_000,
};

/** A sample at `at` ms with `percent` of 512 MiB available. */
function sample(at: number, percent: number, temperatureCelsius: number | null = null): PressureSample {
  return { at, memoryAvailableBytes: Math.round((TOTAL * percent) / 100), memoryTotalBytes: TOTAL, temperatureCelsius };
}

interface Step { at: number; tiers: string[]; changes: PressureChange[] }

/** Feed the samples in order; the evicted tiers and the changes after each. */
function run(samples: PressureSample[], config = CONFIG, from: PressureState = INITIAL_PRESSURE_STATE): { steps: Step[]; state: PressureState } {
  let state = from;
  const steps: Step[] = [];
  for (const s of samples) {
    const out = evaluatePressure(state, s, config);
    state = out.state;
    steps.push({ at: s.at, tiers: evictedTiers(state.evicted), changes: out.changes });
  }
  return { steps, state };
}

/** One sample every 10 s from `start`, with these memory percentages. */
function series(start: number, percents: number[], temperature: (i: number) => number | null = () => null): PressureSample[] {
  return percents.map((p, i) => sample(start + i * SAMPLE_MS, p, temperature(i)));
}

const kinds = (steps: Step[]): string[] => steps.flatMap((s) => s.changes.map((c) => (c.change === 'restored' ? `restored:${c.tier}` : c.change)));

describe('memory thresholds', () => {
  test('plenty of memory: nothing happens', () => {
    const { steps, state } = run(series(0, [50, 40, 30, 21]));
    assert.deepEqual(kinds(steps), []);
    assert.deepEqual(state.evicted, {});
  });

  test('below the evict threshold: best-effort at once, the reason names the reading and the threshold', () => {
    const { steps } = run([sample(0, 50), sample(10_000, 8)]);
    assert.deepEqual(steps[1]?.tiers, ['best-effort']);
    assert.deepEqual(steps[1]?.changes, [{ change: 'entered', reason: 'memory available 41.0 MiB (8.0 % of 512.0 MiB) below 10 %' }]);
  });

  test('exactly at the evict threshold is not below it', () => {
    const tenPercent: PressureSample = { at: 0, memoryAvailableBytes: 100 * MiB, memoryTotalBytes: 1000 * MiB, temperatureCelsius: null };
    assert.deepEqual(kinds(run([tenPercent]).steps), []);
    assert.deepEqual(kinds(run([{ ...tenPercent, memoryAvailableBytes: 100 * MiB - 1 }]).steps), ['entered']);
  });

  test('readings inside the band change nothing, in either direction', () => {
    // From clear: 15 % is not below 10 %.
    assert.deepEqual(kinds(run(series(0, [50, 15, 11, 19])).steps), []);
    // Under pressure: 15 % is not above 20 %, so the pressure lasts (and escalates after 30 s).
    const { steps } = run(series(0, [8, 15, 19, 20, 15]));
    assert.deepEqual(kinds(steps), ['entered', 'escalated']);
    assert.deepEqual(steps.at(-1)?.tiers, ['normal', 'best-effort']);
  });

  test('a floor in bytes: pressure below it even when the share is fine, over only above both clear thresholds', () => {
    const config: PressurePolicyConfig = {
      ...CONFIG, memory: { evictBelowPercent: 1, clearAbovePercent: 2, evictBelowBytes: 64 * MiB, clearAboveBytes: 128 * MiB },
    };
    const big = 4096 * MiB;
    const at = (t: number, mib: number): PressureSample => ({ at: t, memoryAvailableBytes: mib * MiB, memoryTotalBytes: big, temperatureCelsius: null });
    const { steps } = run([at(0, 50), at(10_000, 100), at(20_000, 200)], config);
    assert.deepEqual(steps[0]?.changes, [{ change: 'entered', reason: 'memory available 50.0 MiB (1.2 % of 4096.0 MiB) below 64.0 MiB' }]);
    assert.deepEqual(kinds(steps.slice(1, 2)), [], '100 MiB is 2.4 % (above 2 %) but not above 128 MiB');
    assert.deepEqual(kinds(steps.slice(2)), ['cleared']);
  });

  test('a broken read (MemTotal 0) is no evidence either way', () => {
    const broken: PressureSample = { at: 10_000, memoryAvailableBytes: 0, memoryTotalBytes: 0, temperatureCelsius: null };
    assert.deepEqual(kinds(run([sample(0, 50), broken]).steps), []);
    const { steps } = run([sample(0, 5), broken, { ...broken, at: 20_000 }]);
    assert.deepEqual(kinds(steps), ['entered'], 'not cleared by a broken read');
  });

  test('a rule set to null is off', () => {
    assert.deepEqual(kinds(run(series(0, [1, 1, 1, 1, 1]), { ...CONFIG, memory: null }).steps), []);
  });
});

describe('temperature thresholds', () => {
  test('at or above the evict temperature enters, at or below the clear one leaves; between, nothing changes', () => {
    const temps = [79.9, 80, 75, 70.1, 70];
    const { steps } = run(series(0, temps.map(() => 50), (i) => temps[i] ?? null));
    assert.deepEqual(steps.map((s) => s.changes.map((c) => c.change)), [[], ['entered'], [], [], ['cleared']]);
    assert.deepEqual(steps[1]?.changes[0], { change: 'entered', reason: 'temperature 80.0 °C at or above 80 °C' });
  });

  test('a machine without a thermal zone: only the memory rule acts', () => {
    const { steps } = run(series(0, [50, 50, 5, 50], () => null));
    assert.deepEqual(kinds(steps), ['entered', 'cleared']);
    assert.match(steps[2]?.changes[0]?.reason ?? '', /^memory available/);
  });

  test('a missing reading while hot neither clears nor enters: no reading is no evidence', () => {
    const temps = [85, null, null, null, 60];
    const { steps } = run(series(0, temps.map(() => 50), (i) => temps[i] ?? null));
    assert.deepEqual(steps.map((s) => s.changes.map((c) => c.change)), [['entered'], [], [], ['escalated'], ['cleared']]);
  });

  test('both rules: the pressure lasts while either is past its threshold, and the reason names both', () => {
    const temps = [85, 85, 65, 65];
    const { steps } = run(series(0, [5, 50, 50, 50], (i) => temps[i] ?? null));
    assert.deepEqual(steps[0]?.changes, [{
      change: 'entered', reason: 'memory available 25.6 MiB (5.0 % of 512.0 MiB) below 10 %; temperature 85.0 °C at or above 80 °C',
    }]);
    // Memory is fine from the second sample on, the temperature only from the third.
    assert.deepEqual(steps.map((s) => s.changes.map((c) => c.change)), [['entered'], [], ['cleared'], []]);
  });
});

describe('escalation', () => {
  test('normal services go when the pressure outlasts escalateAfterMs, not a sample before', () => {
    const samples = [sample(0, 5), sample(29_999, 5), sample(30_000, 5), sample(40_000, 5)];
    const { steps } = run(samples);
    assert.deepEqual(steps.map((s) => s.tiers), [['best-effort'], ['best-effort'], ['normal', 'best-effort'], ['normal', 'best-effort']]);
    assert.deepEqual(steps[2]?.changes, [{
      change: 'escalated', reason: 'memory available 25.6 MiB (5.0 % of 512.0 MiB) below 10 %; pressure lasted 30 s with best-effort services evicted',
    }]);
  });

  test('escalateAfterMs 0: both tiers go with the first sample under pressure', () => {
    const { steps } = run([sample(0, 5)], { ...CONFIG, escalateAfterMs: 0 });
    assert.deepEqual(kinds(steps), ['entered', 'escalated']);
  });

  test('no escalation when the pressure clears before escalateAfterMs and comes back: the count starts again', () => {
    // 20 s under, cleared, 20 s under again: never 30 s in one go.
    const { steps } = run(series(0, [5, 5, 50, 5, 5]));
    assert.deepEqual(kinds(steps), ['entered', 'cleared', 'entered']);
    assert.deepEqual(steps.at(-1)?.tiers, ['best-effort']);
  });
});

describe('return', () => {
  test('normal first after clearForMs of clear readings, best-effort after another clearForMs', () => {
    const under = series(0, [5, 5, 5, 5]); // escalates at 30 s
    const { state } = run(under);
    assert.deepEqual(evictedTiers(state.evicted), ['normal', 'best-effort']);
    const clearAt = 40_000;
    const { steps } = run([
      sample(clearAt, 50),
      sample(clearAt + 119_999, 50),
      sample(clearAt + 120_000, 50),
      sample(clearAt + 239_999, 50),
      sample(clearAt + 240_000, 50),
      sample(clearAt + 400_000, 50),
    ], CONFIG, state);
    assert.deepEqual(steps.map((s) => s.tiers), [['normal', 'best-effort'], ['normal', 'best-effort'], ['best-effort'], ['best-effort'], [], []]);
    assert.deepEqual(steps.map((s) => s.changes.map((c) => (c.change === 'restored' ? `${c.change}:${c.tier}:${c.reason}` : c.change))), [
      ['cleared'], [], ['restored:normal:pressure clear for 120 s'], [], ['restored:best-effort:pressure clear for 120 s'], [],
    ]);
    assert.deepEqual(steps[0]?.changes[0], { change: 'cleared', reason: 'memory available 50.0 % (clear above 20 %)' });
  });

  test('pressure coming back during the wait restarts it, and what is still evicted stays evicted', () => {
    const { state } = run(series(0, [5, 5, 5, 5]));
    // Clear at 40 s; back under at 150 s (before 160 s); clear again at 160 s.
    const { steps } = run([sample(40_000, 50), sample(150_000, 5), sample(160_000, 50), sample(279_999, 50), sample(280_000, 50)], CONFIG, state);
    assert.deepEqual(kinds(steps), ['cleared', 'entered', 'cleared', 'restored:normal']);
    assert.equal(steps.at(-1)?.at, 280_000, 'a full clearForMs after the second clearing');
  });

  test('pressure after the normal tier came back: best-effort is still out, normal goes again only after escalateAfterMs', () => {
    const { state } = run([...series(0, [5, 5, 5, 5]), sample(40_000, 50), sample(160_000, 50)]);
    assert.deepEqual(evictedTiers(state.evicted), ['best-effort']);
    const { steps } = run([sample(170_000, 5), sample(190_000, 5), sample(200_000, 5)], CONFIG, state);
    assert.deepEqual(steps.map((s) => s.tiers), [['best-effort'], ['best-effort'], ['normal', 'best-effort']]);
    assert.deepEqual(kinds(steps), ['entered', 'escalated']);
  });
});

describe('no flapping', () => {
  test('a reading oscillating around the evict threshold: evicted once, never back while it lasts', () => {
    const percents = Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? 9.9 : 10.1));
    const { steps } = run(series(0, percents));
    assert.deepEqual(kinds(steps), ['entered', 'escalated']);
  });

  test('a reading oscillating around the clear threshold: cleared once, tiers come back on schedule', () => {
    const { state } = run(series(0, [5, 5, 5, 5]));
    const percents = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? 20.1 : 19.9));
    const { steps } = run(series(40_000, percents), CONFIG, state);
    assert.deepEqual(kinds(steps), ['cleared', 'restored:normal', 'restored:best-effort']);
  });

  test('wild swings across the whole band every sample: nothing comes back, the evicted set changes once', () => {
    const percents = Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? 5 : 50));
    const { steps } = run(series(0, percents));
    const sets = steps.map((s) => s.tiers.join());
    assert.equal(new Set(sets).size, 1, 'best-effort evicted at the first sample and kept out');
    assert.deepEqual(sets[0], 'best-effort');
    assert.ok(steps.every((s) => s.changes.every((c) => c.change !== 'restored')), "steps.every((s) => s.changes.every((c) => c.change !== 'restored'))");
  });

  test('random readings: every return follows clearForMs of clear readings, normal before best-effort, escalation only after escalateAfterMs', () => {
    // Runs of similar readings (under, inside the band, clear), so that long pressures and long clear spells both occur.
    const percent = fc.oneof(fc.double({ min: 0, max: 10, noNaN: true }), fc.double({ min: 10, max: 20, noNaN: true }), fc.double({ min: 20, max: 60, noNaN: true }));
    const temp = fc.option(fc.oneof(fc.double({ min: 40, max: 70, noNaN: true }), fc.double({ min: 70, max: 80, noNaN: true }), fc.double({ min: 80, max: 95, noNaN: true })), { nil: null });
    const stretch = fc.tuple(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 40_000 }), fc.record({ percent, temp }));
    const runs = fc.array(stretch, { minLength: 1, maxLength: 30, size: 'max' });
    fc.assert(fc.property(runs, (spec) => {
      const raw = spec.flatMap(([count, gap, r]) => Array.from({ length: count }, () => [gap, r] as const));
      let at = 0;
      const samples = raw.map(([gap, r]) => { at += gap; return sample(at, r.percent, r.temp); });
      let state = INITIAL_PRESSURE_STATE;
      let lastUnder: number | null = null; // the last sample under pressure
      let lastRestore: number | null = null;
      let pressureStart: number | null = null;
      for (const s of samples) {
        const before = state;
        const out = evaluatePressure(state, s, CONFIG);
        state = out.state;
        const under = state.memory !== null || state.temperature !== null;
        if (under && pressureStart === null) pressureStart = s.at;
        if (!under) pressureStart = null;
        for (const c of out.changes) {
          if (c.change === 'restored') {
            assert.ok(lastUnder === null || s.at - lastUnder >= CONFIG.clearForMs, 'restored within clearForMs of pressure');
            assert.ok(lastRestore === null || s.at - lastRestore >= CONFIG.clearForMs, 'two tiers within one clear period');
            if (c.tier === 'best-effort') assert.equal(state.evicted.normal, undefined, 'best-effort back before normal');
          }
          if (c.change === 'escalated') {
            assert.ok(pressureStart !== null && s.at - pressureStart >= CONFIG.escalateAfterMs, 'pressureStart !== null && s.at - pressureStart >= CONFIG.escalateAfterMs');
            assert.notEqual(before.evicted['best-effort'] ?? state.evicted['best-effort'], undefined);
          }
          if (c.change === 'restored') lastRestore = s.at;
        }
        // Evicted tiers only under pressure or while waiting for a return; never a tier without a reason.
        if (under) lastUnder = s.at;
        assert.ok(Object.keys(state.evicted).every((t) => t === 'normal' || t === 'best-effort'), "Object.keys(state.evicted).every((t) => t === 'normal' || t === 'best-effort')");
        if (state.evicted.normal !== undefined) assert.notEqual(state.evicted['best-effort'], undefined, 'normal evicted while best-effort runs');
      }
    }), { numRuns: 300 });
  });
});
