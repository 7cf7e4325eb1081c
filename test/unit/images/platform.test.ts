import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bestPlatform, devicePlatform, formatPlatform, platformRuns } from '../../../agent/images/platform.js';

describe('devicePlatform: Node and uname mapped to OCI names', () => {
  test('x64 is amd64, arm64 is arm64', () => {
    assert.deepEqual(devicePlatform('x86_64', 'x64'), { os: 'linux', architecture: 'amd64' });
    assert.deepEqual(devicePlatform('aarch64', 'arm64'), { os: 'linux', architecture: 'arm64' });
  });
  test('32-bit arm takes its variant from the machine, and a 32-bit userland on a 64-bit kernel is arm/v7', () => {
    assert.deepEqual(devicePlatform('armv6l', 'arm'), { os: 'linux', architecture: 'arm', variant: 'v6' });
    assert.deepEqual(devicePlatform('armv7l', 'arm'), { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.deepEqual(devicePlatform('aarch64', 'arm'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  });
  test('formatted as the engine prints platforms', () => {
    assert.equal(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' }), 'linux/arm/v7');
    assert.equal(formatPlatform({ os: 'linux', architecture: 's390x' }), 'linux/s390x');
  });
});

describe('platformRuns', () => {
  const amd64 = { os: 'linux', architecture: 'amd64' };
  const arm64 = { os: 'linux', architecture: 'arm64' };
  const armv6 = { os: 'linux', architecture: 'arm', variant: 'v6' };
  const armv7 = { os: 'linux', architecture: 'arm', variant: 'v7' };
  test('same architecture and OS', () => {
    assert.equal(platformRuns(amd64, amd64), true);
    assert.equal(platformRuns(amd64, arm64), false);
    assert.equal(platformRuns(amd64, { os: 'windows', architecture: 'amd64' }), false);
    assert.equal(platformRuns(amd64, { os: 'linux', architecture: 's390x' }), false);
  });
  test('arm: a board runs its own ARM level and older ones; no variant means v7', () => {
    assert.equal(platformRuns(armv7, armv6), true);
    assert.equal(platformRuns(armv6, armv7), false);
    assert.equal(platformRuns(armv6, { os: 'linux', architecture: 'arm' }), false);
    assert.equal(platformRuns(armv7, { os: 'linux', architecture: 'arm' }), true);
  });
  test('arm64 runs arm64 (v8 or no variant), not 32-bit arm; attestation entries match nothing', () => {
    assert.equal(platformRuns(arm64, { os: 'linux', architecture: 'arm64', variant: 'v8' }), true);
    assert.equal(platformRuns(arm64, armv7), false);
    assert.equal(platformRuns(amd64, { os: 'unknown', architecture: 'unknown' }), false);
  });
  test('bestPlatform prefers the exact variant, then the newest one that runs', () => {
    const list = [{ ...armv6, n: 1 }, { ...armv7, n: 2 }, { os: 'linux', architecture: 'arm', variant: 'v5', n: 3 }];
    assert.equal(bestPlatform(armv7, list)?.n, 2);
    assert.equal(bestPlatform({ os: 'linux', architecture: 'arm', variant: 'v8' }, list)?.n, 2);
    assert.equal(bestPlatform(armv6, list)?.n, 1);
    assert.equal(bestPlatform(amd64, list), undefined);
  });
});
