import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LogCapsCheck } from '../../../agent/admission/log-caps-check.js';
import { parseDesiredState } from '../../../protocol/compose/compose-schema.js';

const caps = { maxSize: '10m', maxFiles: 3 };
const check = new LogCapsCheck(caps);
const state = (logging: Record<string, unknown> | undefined): ReturnType<typeof parseDesiredState> =>
  parseDesiredState({ services: { web: { image: 'x', ...(logging === undefined ? {} : { logging }) } } }, { containerLogs: caps });

test('the device default and smaller caps pass; other drivers are not capped', () => {
  assert.equal(check.check(state(undefined), { firstTime: true }), null);
  assert.equal(check.check(state({ options: { 'max-size': '512k', 'max-file': 1 } }), { firstTime: true }), null);
  assert.equal(check.check(state({ driver: 'journald' }), { firstTime: true }), null);
  assert.equal(check.check(state({ driver: 'none' }), { firstTime: true }), null);
});

test('larger or unbounded logs are refused with the reason for the service', () => {
  assert.deepEqual(check.check(state({ options: { 'max-size': '100m', 'max-file': 10 } }), { firstTime: true }), {
    code: 'ADMISSION_REFUSED',
    services: { web: ["logging.options.max-size 100m exceeds this device's cap of 10m", "logging.options.max-file 10 exceeds this device's cap of 3"] },
  });
  assert.deepEqual(check.check(state({ driver: 'local', options: { 'max-size': '-1' } }), { firstTime: true })?.services, {
    web: ['logging.options.max-size "-1" is not a size this device can cap (at most 10m)'],
  });
});

test('a stored version was admitted when it came', () => {
  assert.equal(check.check(state({ options: { 'max-size': '100m' } }), { firstTime: false }), null);
});

test('a cap that is not a size is a configuration error', () => {
  assert.throws(() => new LogCapsCheck({ maxSize: 'lots', maxFiles: 1 }));
});
