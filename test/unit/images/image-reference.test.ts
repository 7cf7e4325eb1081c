import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseImageReference } from '../../../agent/images/image-reference.js';
import { isTsunaguError } from '../../../protocol/errors.js';

test('Docker Hub names: library/ for one part, latest by default, the API host', () => {
  assert.deepEqual(parseImageReference('busybox'), { registry: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'library/busybox', reference: 'latest' });
  assert.deepEqual(parseImageReference('grafana/grafana:10.4'), { registry: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'grafana/grafana', reference: '10.4' });
  assert.deepEqual(parseImageReference('docker.io/library/alpine:3'), { registry: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'library/alpine', reference: '3' });
  assert.equal(parseImageReference('index.docker.io/nginx').repository, 'library/nginx');
});

test('a first part with a dot, a port or localhost names the registry', () => {
  assert.deepEqual(parseImageReference('127.0.0.1:5000/tsunagu-test/busybox:1'), { registry: '127.0.0.1:5000', apiHost: '127.0.0.1:5000', repository: 'tsunagu-test/busybox', reference: '1' });
  assert.deepEqual(parseImageReference('ghcr.io/acme/app'), { registry: 'ghcr.io', apiHost: 'ghcr.io', repository: 'acme/app', reference: 'latest' });
  assert.equal(parseImageReference('localhost/app:2').registry, 'localhost');
});

test('a digest wins over the tag', () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  assert.equal(parseImageReference(`ghcr.io/acme/app:1@${digest}`).reference, digest);
  assert.equal(parseImageReference(`app@${digest}`).repository, 'library/app');
});

test('references the engine would refuse are refused', () => {
  for (const bad of ['Busybox', 'app:', 'app@sha256:short', 'ghcr.io/', 'a//b']) {
    assert.throws(() => parseImageReference(bad), (e) => isTsunaguError(e, 'SCHEMA'), bad);
  }
});
