import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { admit, type AdmissionCheck } from '../../../agent/admission/admission.js';
import { checkCapabilityLabels } from '../../../agent/admission/capability-labels.js';
import { checkHostDevices } from '../../../agent/admission/host-devices.js';
import { checkMemoryFit, memoryFitCheck } from '../../../agent/admission/memory-fit.js';
import { parseDesiredState } from '../../../protocol/compose/compose-schema.js';
import { withDeviceDefaults } from '../../../agent/supervisor/device-defaults.js';
import { isTsunaguError } from '../../../protocol/errors.js';

const MIB = 1024 * 1024;
const doc = (services: Record<string, Record<string, unknown>>) => parseDesiredState({ services });

describe('device defaults', () => {
  test('a service without a memory limit gets the default; one with a limit keeps it', () => {
    const d = withDeviceDefaults(doc({ a: { image: 'i' }, b: { image: 'i', mem_limit: '64m' }, c: { image: 'i', deploy: { resources: { limits: { memory: '32m' } } } } }), { memoryLimitBytes: 256 * MIB });
    assert.deepEqual(d.services.map((s) => [s.name, s.limits.memoryBytes]), [['a', 256 * MIB], ['b', 64 * MIB], ['c', 32 * MIB]]);
  });
  test('no default leaves the state as it is', () => {
    const d = doc({ a: { image: 'i' } });
    assert.equal(withDeviceDefaults(d, { memoryLimitBytes: null }), d);
  });
});

describe('memory fit', () => {
  const facts = { totalBytes: 1024 * MIB, reserveBytes: 128 * MIB };
  test('limits that add up to total minus reserve fit, exactly', () => {
    assert.equal(checkMemoryFit(doc({ a: { image: 'i', mem_limit: '512m' }, b: { image: 'i', mem_limit: '384m' } }), facts), null);
  });
  test('one byte more is refused, every service named with its share, largest first', () => {
    const f = checkMemoryFit(doc({ a: { image: 'i', mem_limit: '384m' }, b: { image: 'i', mem_limit: 512 * MIB + 1 } }), facts);
    assert.equal(f?.code, 'ADMISSION_REFUSED');
    assert.deepEqual(Object.keys(f?.services ?? {}), ['b', 'a']);
    assert.match(f?.services.a?.[0] ?? '', /memory limit 384 MiB: the services' limits add up to 896 MiB, more than the 896 MiB this device has for containers \(1024 MiB minus a reserve of 128 MiB\)/);
  });
  test('the default limit counts: many services without limits do not slip through', async () => {
    // As the desired channel hands it over: parsed with the device's default limit filled in.
    const many = withDeviceDefaults(doc(Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`s${i}`, { image: 'i' }]))), { memoryLimitBytes: 256 * MIB });
    const check = memoryFitCheck(facts);
    assert.equal((await check.check(many, { firstTime: true }))?.code, 'ADMISSION_REFUSED');
    // A version restored from disk was admitted when it came.
    assert.equal(await check.check(many, { firstTime: false }), null);
  });
  test('a reserve above total memory leaves room for nothing', () => {
    assert.notEqual(checkMemoryFit(doc({ a: { image: 'i', mem_limit: '1m' } }), { totalBytes: 64 * MIB, reserveBytes: 128 * MIB }), null);
  });
});

describe('host devices and labels', () => {
  test('a missing host device is named; present ones pass', () => {
    const d = doc({ a: { image: 'i', devices: ['/dev/ttyUSB0', '/dev/video0:/dev/cam'] }, b: { image: 'i', devices: ['/dev/null'] } });
    const f = checkHostDevices(d, (p) => p !== '/dev/ttyUSB0');
    assert.deepEqual(f?.services, { a: ['devices: /dev/ttyUSB0 is not present on this device'] });
    assert.equal(checkHostDevices(d, () => true), null);
  });
  test('missing capability labels are named per service', () => {
    const d = doc({ a: { image: 'i', 'x-tsunagu': { requires: ['gpu', 'arch=arm64'] } }, b: { image: 'i', 'x-tsunagu': { requires: ['zigbee'] } } });
    const f = checkCapabilityLabels(d, new Set(['arch=arm64', 'zigbee']));
    assert.equal(f?.code, 'MISSING_LABEL');
    assert.deepEqual(f?.services, { a: ['x-tsunagu.requires gpu: this device lacks that label'] });
  });
});

describe('admit', () => {
  const finding = (name: string, code: 'POLICY_REFUSED' | 'ADMISSION_REFUSED', services: Record<string, string[]>): AdmissionCheck => ({ name, check: () => ({ code, services }) });
  test('all findings are gathered into one error, per service, the first code leading', async () => {
    const d = doc({ a: { image: 'i' } });
    await assert.rejects(admit(d, [finding('p', 'POLICY_REFUSED', { a: ['privileged: no'] }), finding('m', 'ADMISSION_REFUSED', { a: ['memory: no'], b: ['x'] })], { firstTime: true }), (err) => {
      assert.ok(isTsunaguError(err, 'POLICY_REFUSED'), "isTsunaguError(err, 'POLICY_REFUSED')");
      assert.deepEqual(err.details?.services, { a: 'privileged: no; memory: no', b: 'x' });
      return true;
    });
  });
  test('no findings, or empty ones, admit', async () => {
    await admit(doc({ a: { image: 'i' } }), [{ name: 'none', check: () => null }, finding('empty', 'ADMISSION_REFUSED', {})], { firstTime: true });
  });
});
