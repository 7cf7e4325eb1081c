import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTsunaguError } from '../../../protocol/errors.js';
import {
  allowedFailures, DEFAULT_STRATEGY, formatStrategy, parseDuration, parseMaxFailures, parseOnHalt, parseStrategy, parseWaves,
  RolloutStrategySchema, strategyFromJson, waveSizes,
} from '../../../provisioning/deployments/rollout-strategy.js';

const refusedWith = (message: RegExp) => (err: unknown): boolean => isTsunaguError(err, 'BAD_ROLLOUT_STRATEGY') && message.test(err.message);

test('waves parse as counts and percentages, cumulative, ending at 100%', () => {
  assert.deepEqual(parseWaves('1,10%,50%,100%'), [{ count: 1 }, { percent: 10 }, { percent: 50 }, { percent: 100 }]);
  assert.deepEqual(parseWaves(' 5 , 2.5% ,100%'), [{ count: 5 }, { percent: 2.5 }, { percent: 100 }]);
  assert.deepEqual(parseWaves('100%'), [{ percent: 100 }]);
});

test('bad waves are refused with BAD_ROLLOUT_STRATEGY naming the flag and the part', () => {
  const cases: [string, RegExp][] = [
    ['', /--waves "": it is empty/],
    ['1,10%,50%', /last wave must be 100%/],
    ['1,5,10', /last wave must be 100%/],
    ['10%,5%,100%', /5% is not larger/],
    ['3,2,100%', /2 device\(s\) is not larger/],
    ['0,100%', /"0" is not a device count/],
    ['1,,100%', /"" is neither/],
    ['1,ten%,100%', /"ten%" is neither/],
    ['1,150%', /"150%" is not a percentage/],
    ['0%,100%', /"0%" is not a percentage/],
    ['-1,100%', /"-1" is neither/],
  ];
  for (const [text, message] of cases) assert.throws(() => parseWaves(text), refusedWith(message), `--waves ${JSON.stringify(text)}`);
});

test('durations take units and add up; a bare number other than 0 is refused', () => {
  assert.equal(parseDuration('10m'), 600_000);
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('0'), 0);
  assert.equal(parseDuration('1d'), 86_400_000);
  for (const text of ['10', '10 m', 'm', '', '1.5h', '31d', '-1m']) assert.throws(() => parseDuration(text), refusedWith(/--bake/), text);
});

test('max failures: a count or a percentage of the devices tried', () => {
  assert.deepEqual(parseMaxFailures('3'), { count: 3 });
  assert.deepEqual(parseMaxFailures('0'), { count: 0 });
  assert.deepEqual(parseMaxFailures('5%'), { percent: 5 });
  for (const text of ['', 'five', '101%', '-1', '5 %']) assert.throws(() => parseMaxFailures(text), refusedWith(/--max-failures/), text);
  assert.equal(parseOnHalt('hold'), 'hold');
  assert.throws(() => parseOnHalt('rollback'), refusedWith(/--on-halt "rollback": expected revert or hold/));
});

test('flags left out take the defaults; the result formats back to the same flags', () => {
  assert.deepEqual(parseStrategy({}), DEFAULT_STRATEGY);
  const s = parseStrategy({ waves: '2,25%,100%', bake: '5m', maxFailures: '1', onHalt: 'hold', deadline: '1h' });
  assert.deepEqual(s, { waves: [{ count: 2 }, { percent: 25 }, { percent: 100 }], bakeMs: 300_000, maxFailures: { count: 1 }, onHalt: 'hold', deadlineMs: 3_600_000 });
  assert.equal(formatStrategy(s), '--waves 2,25%,100% --bake 5m --max-failures 1 --on-halt hold --wave-deadline 1h');
  assert.deepEqual(parseStrategy({ waves: '1,10%,50%,100%', bake: '10m', maxFailures: '5%', onHalt: 'revert', deadline: '30m' }), DEFAULT_STRATEGY);
  assert.throws(() => parseStrategy({ deadline: '0' }), refusedWith(/--wave-deadline/));
});

test('a stored strategy is checked like a typed one: waves that do not grow are refused', () => {
  assert.deepEqual(strategyFromJson(JSON.parse(JSON.stringify(DEFAULT_STRATEGY))), DEFAULT_STRATEGY);
  assert.throws(() => strategyFromJson({ ...DEFAULT_STRATEGY, waves: [{ percent: 50 }] }), refusedWith(/last wave must be 100%/));
  assert.throws(() => strategyFromJson({ ...DEFAULT_STRATEGY, bakeMs: -1 }), refusedWith(/stored rollout strategy/));
  assert.equal(RolloutStrategySchema.safeParse({ ...DEFAULT_STRATEGY, extra: 1 }).success, false);
});

test('wave sizes: percentages round up, never shrink, never exceed the targets, the last is everyone', () => {
  const waves = DEFAULT_STRATEGY.waves;
  assert.deepEqual(waveSizes(waves, 1000), [1, 100, 500, 1000]);
  assert.deepEqual(waveSizes(waves, 7), [1, 1, 4, 7]);
  assert.deepEqual(waveSizes(waves, 1), [1, 1, 1, 1]);
  assert.deepEqual(waveSizes(waves, 0), [0, 0, 0, 0]);
  assert.deepEqual(waveSizes([{ count: 50 }, { percent: 10 }, { percent: 100 }], 100), [50, 50, 100]);
  for (let n = 0; n <= 300; n += 1) {
    const sizes = waveSizes(waves, n);
    assert.equal(sizes.at(-1), n);
    for (let i = 1; i < sizes.length; i += 1) assert.ok(sizes[i]! >= sizes[i - 1]!, `wave ${i} is not smaller than wave ${i - 1}`);
  }
});

test('allowed failures: a percentage of the devices tried rounds down, so the first failed canary halts', () => {
  assert.equal(allowedFailures({ percent: 5 }, 1), 0);
  assert.equal(allowedFailures({ percent: 5 }, 20), 1);
  assert.equal(allowedFailures({ percent: 5 }, 39), 1);
  assert.equal(allowedFailures({ percent: 5 }, 100), 5);
  assert.equal(allowedFailures({ count: 3 }, 1), 3);
  assert.equal(allowedFailures({ percent: 100 }, 7), 7);
});
