import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTsunaguError } from '../../../protocol/errors.js';
import type { DeviceRecord } from '../../../provisioning/fleet-database.js';
import { selectTargets } from '../../../provisioning/deploy/targets.js';
import { formatSelector, matchesSelector, parseSelector } from '../../../provisioning/deploy/selector.js';

test('a selector parses into its pairs, spaces around pairs allowed, values may hold /', () => {
  assert.deepEqual(parseSelector('arch=arm64,gpu=true'), { arch: 'arm64', gpu: 'true' });
  assert.deepEqual(parseSelector(' arch=arm/v7 , site=plant-2 '), { arch: 'arm/v7', site: 'plant-2' });
  assert.deepEqual(parseSelector('empty='), { empty: '' });
  assert.equal(formatSelector(parseSelector('a=1,b=2')), 'a=1,b=2');
});

test('a bad selector is refused with CONFIG naming the faulty part', () => {
  const cases: [string, RegExp][] = [
    ['', /it is empty/],
    ['  ', /it is empty/],
    ['arch', /"arch" has no "="/],
    ['arch=arm64,', /empty pair/],
    ['arch=arm64,,gpu=true', /empty pair/],
    ['=arm64', /"" is not a label key/],
    ['Arch=arm64', /"Arch" is not a label key/],
    ['ar ch=arm64', /"ar ch" is not a label key/],
    ['arch=arm 64', /"arm 64" is not a label value/],
    ['arch=a,arch=b', /"arch" appears twice/],
    ['gpu=tr*e', /"tr\*e" is not a label value/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseSelector(text), (err) => isTsunaguError(err, 'CONFIG') && message.test(err.message), `selector ${JSON.stringify(text)}`);
  }
});

test('a device matches only when every pair equals its label', () => {
  const labels = { arch: 'arm64', gpu: 'true', site: 'a' };
  assert.equal(matchesSelector({ arch: 'arm64' }, labels), true);
  assert.equal(matchesSelector({ arch: 'arm64', gpu: 'true' }, labels), true);
  assert.equal(matchesSelector({ arch: 'arm64', gpu: 'false' }, labels), false);
  assert.equal(matchesSelector({ arch: 'arm64', zone: 'x' }, labels), false);
  assert.equal(matchesSelector({ toString: 'x' }, {}), false, 'inherited properties are not labels');
  assert.equal(matchesSelector({ empty: '' }, {}), false, 'an absent label does not equal the empty value');
  assert.equal(matchesSelector({ empty: '' }, { empty: '' }), true);
});

test('targets: active devices only; registry labels first, the retained inventory only for devices without them', () => {
  const device = (deviceId: string, status: DeviceRecord['status'], labels: Record<string, string>): DeviceRecord => ({
    deviceId, signPublicKey: `sk-${deviceId}`, boxPublicKey: `bk-${deviceId}`, serial: deviceId, model: 'm', arch: 'arm64', macs: [], hostname: 'h',
    status, approved: true, enrolledAt: 1, updatedAt: 1, lastSeen: null, online: true, labels, replaces: null, asNew: false,
  });
  const devices = [
    device('d-reg', 'active', { gpu: 'true' }),
    device('d-stale', 'active', { gpu: 'false' }),
    device('d-inv', 'active', {}),
    device('d-none', 'active', {}),
    device('d-revoked', 'revoked', { gpu: 'true' }),
    device('d-pending', 'pending', { gpu: 'true' }),
  ];
  const inventories = new Map([['d-inv', { gpu: 'true' }], ['d-stale', { gpu: 'true' }]]);
  assert.deepEqual(selectTargets(devices, { gpu: 'true' }, inventories).map((t) => [t.deviceId, t.boxPublicKey, t.labelsFrom]), [
    ['d-reg', 'bk-d-reg', 'registry'],
    ['d-inv', 'bk-d-inv', 'inventory'],
  ]);
});
