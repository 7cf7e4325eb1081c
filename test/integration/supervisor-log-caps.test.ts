import assert from 'node:assert/strict';
import { test } from 'node:test';
import { supervisorHarness } from '../support/supervisor-harness.js';

test('container logs are capped by default: the engine holds json-file with max-size and max-file', async (t) => {
  const h = await supervisorHarness(t, 'logdefault');
  await h.settle(h.compose({ app: { image: h.images.busybox1, restart: 'always' } }), 'v1');
  assert.deepEqual((await h.only('app')).HostConfig.LogConfig, { Type: 'json-file', Config: { 'max-file': '3', 'max-size': '10m' } });
});

test('the device\'s caps (disk.containerLogs) are every service\'s default, and fill what a service leaves out', async (t) => {
  const h = await supervisorHarness(t, 'logcaps', { containerLogs: { maxSize: '2m', maxFiles: 2 } });
  await h.settle(h.compose({
    plain: { image: h.images.busybox1, restart: 'always' },
    local: { image: h.images.busybox1, restart: 'always', logging: { driver: 'local', options: { 'max-size': '1m' } } },
  }), 'v1');
  assert.deepEqual((await h.only('plain')).HostConfig.LogConfig, { Type: 'json-file', Config: { 'max-file': '2', 'max-size': '2m' } });
  assert.deepEqual((await h.only('local')).HostConfig.LogConfig, { Type: 'local', Config: { 'max-file': '2', 'max-size': '1m' } });
});
