import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadAgentConfig } from '../../agent/config.js';
import { isTsunaguError } from '../../protocol/errors.js';
import { withTempFile } from '../support/temp-dirs.js';

function load(yaml: string): ReturnType<typeof loadAgentConfig> {
  return withTempFile('agent.yaml', yaml, (path) => loadAgentConfig(path, {}));
}

test('disk rules have defaults', () => {
  assert.deepEqual(load('logLevel: info\n').disk, {
    reserveBytes: 512 * 1024 * 1024, unpackFactor: 2.5,
    gc: { highWatermarkPercent: 85, lowWatermarkPercent: 70 },
    containerLogs: { maxSize: '10m', maxFiles: 3 },
  });
});

test('each rule is set in the config file; unset keys keep their default', () => {
  const disk = load('disk:\n  path: /srv/docker\n  reserveBytes: 1000\n  gc: { highWatermarkPercent: 90 }\n  containerLogs: { maxSize: 5m }\n').disk;
  assert.deepEqual(disk, {
    path: '/srv/docker', reserveBytes: 1000, unpackFactor: 2.5,
    gc: { highWatermarkPercent: 90, lowWatermarkPercent: 70 },
    containerLogs: { maxSize: '5m', maxFiles: 3 },
  });
});

test('inconsistent or unknown disk settings are refused at start', () => {
  for (const yaml of [
    'disk: { gc: { highWatermarkPercent: 60, lowWatermarkPercent: 60 } }\n',
    'disk: { containerLogs: { maxSize: unbounded } }\n',
    'disk: { unpackFactor: 0.5 }\n',
    'disk: { path: relative/dir }\n',
    'disk: { gcEvery: 5 }\n',
  ]) {
    assert.throws(() => load(yaml), (e) => isTsunaguError(e, 'CONFIG'), yaml);
  }
});
