import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readStaticFactsInChild } from '../../agent/resources/static-facts-child.js';
import { isTsunaguError } from '../../protocol/errors.js';

// The child is the agent's own `static-facts` command in production; here,
// small node programs stand in for the answers it could give.
const node = (script: string) => ({ file: process.execPath, args: ['-e', script] });

const FACTS = {
  hardware: {}, os: { platform: 'linux', distro: 'Debian GNU/Linux', release: '12', kernel: '6.1.0' },
  machine: 'aarch64', processArch: 'arm64', cpu: { model: 'Cortex-A72', cores: 4, physicalCores: 4 }, memoryTotalBytes: 4e9,
  disks: [], filesystems: [], interfaces: [], graphics: [], devEntries: ['null'],
};

test('the facts a child prints are read and checked', async () => {
  const facts = await readStaticFactsInChild(node(`process.stdout.write(${JSON.stringify(JSON.stringify(FACTS))})`));
  assert.equal(facts.machine, 'aarch64');
  assert.deepEqual(facts.devEntries, ['null']);
});

test('a child that fails, or answers something else, is PROBE_FAILED with what it said', async () => {
  await assert.rejects(readStaticFactsInChild(node('console.error("dmidecode: permission denied"); process.exit(3)')),
    (err: unknown) => isTsunaguError(err) && err.code === 'PROBE_FAILED' && err.message.includes('dmidecode: permission denied'));
  await assert.rejects(readStaticFactsInChild(node('process.stdout.write("not json")')),
    (err: unknown) => isTsunaguError(err) && err.code === 'PROBE_FAILED');
  await assert.rejects(readStaticFactsInChild(node(`process.stdout.write(${JSON.stringify(JSON.stringify({ ...FACTS, machine: 7 }))})`)),
    (err: unknown) => isTsunaguError(err) && err.code === 'PROBE_FAILED' && /machine/.test(err.message));
});
