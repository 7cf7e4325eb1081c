import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseChallenge } from '../../../agent/images/registry-challenge.js';
import { isLoopbackHost } from '../../../agent/images/registry-client.js';

test('Docker Hub and GHCR challenges', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), {
    scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' },
  });
  assert.deepEqual(parseChallenge('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:acme/app:pull"')?.params.service, 'ghcr.io');
});

test('Basic, token values, escapes, other schemes skipped', () => {
  assert.deepEqual(parseChallenge('Basic realm="tsunagu-test"'), { scheme: 'basic', params: { realm: 'tsunagu-test' } });
  assert.deepEqual(parseChallenge('Negotiate, Bearer realm=http://127.0.0.1:9/t,service=reg'), { scheme: 'bearer', params: { realm: 'http://127.0.0.1:9/t', service: 'reg' } });
  assert.equal(parseChallenge('Basic realm="a \\"quoted\\" realm"')?.params.realm, 'a "quoted" realm');
  assert.equal(parseChallenge('Negotiate'), undefined);
  assert.equal(parseChallenge(undefined), undefined);
  assert.equal(parseChallenge('=,=,'), undefined);
});

test('loopback registries, as the engine treats them insecure by default', () => {
  for (const host of ['127.0.0.1:5000', '127.8.9.1', 'localhost:5000', '[::1]:5000', 'localhost']) assert.equal(isLoopbackHost(host), true, host);
  for (const host of ['ghcr.io', '10.0.0.1:5000', 'registry-1.docker.io', '128.0.0.1', 'localhost.example.com']) assert.equal(isLoopbackHost(host), false, host);
});
