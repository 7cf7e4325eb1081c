import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileFactsStore } from '../../agent/resources/facts-cache.js';
import { InventoryService } from '../../agent/resources/inventory.js';
import type { ResourceProbe, StaticFacts } from '../../agent/resources/probe.js';
import { silentLogger } from '../../common/logger.js';
import { withDir } from '../support/temp-dirs.js';

function facts(over: Partial<StaticFacts> = {}): StaticFacts {
  return {
    hardware: { model: 'Raspberry Pi 4 Model B Rev 1.4' },
    os: { platform: 'linux', distro: 'Debian GNU/Linux', release: '12', kernel: '6.6.31' },
    machine: 'aarch64',
    processArch: 'arm64',
    cpu: { model: 'ARM Cortex-A72', cores: 4, physicalCores: 4 },
    memoryTotalBytes: 4e9,
    disks: [{ name: 'mmcblk0', sizeBytes: 32e9, removable: false }],
    filesystems: [{ mount: '/', device: '/dev/mmcblk0p2', type: 'ext4', sizeBytes: 30e9 }],
    interfaces: [{ name: 'eth0', mac: 'dc:a6:32:00:00:01', addresses: ['192.0.2.10'], internal: false, physical: true }],
    graphics: [],
    devEntries: ['null', 'ttyS0'],
    ...over,
  };
}

function probeOf(current: () => StaticFacts): ResourceProbe & { reads: number } {
  const probe = {
    reads: 0,
    readStatic: () => {
      probe.reads++;
      return Promise.resolve(current());
    },
    sample: () => Promise.reject(new Error('not used')),
    listDevEntries: () => Promise.resolve(current().devEntries),
  };
  return probe;
}

test('first start reads the machine and keeps the facts; the next start reports from the kept copy without reading', withDir('tsunagu-facts-', async (dir) => {
  const first = probeOf(() => facts());
  await new InventoryService({ probe: first, store: new FileFactsStore(dir, silentLogger()) }).report();
  assert.equal(first.reads, 1);
  assert.ok(existsSync(join(dir, 'facts.json')), "existsSync(join(dir, 'facts.json'))");

  const second = probeOf(() => facts());
  const inventory = new InventoryService({ probe: second, store: new FileFactsStore(dir, silentLogger()) });
  assert.equal((await inventory.report()).arch, 'arm64');
  assert.equal(second.reads, 0, 'the kept facts spare the read on the way to online');
  assert.deepEqual(await inventory.revalidate(), { inventoryChanged: false, labelsChanged: false });
  assert.equal(second.reads, 1);
  assert.deepEqual(await inventory.revalidate(), { inventoryChanged: false, labelsChanged: false });
  assert.equal(second.reads, 1, 'revalidated once');
}));

test('revalidation tells a new address (inventory) from new hardware (labels)', withDir('tsunagu-facts-', async (dir) => {
  await new InventoryService({ probe: probeOf(() => facts()), store: new FileFactsStore(dir, silentLogger()) }).report();

  const moved = new InventoryService({
    probe: probeOf(() => facts({ interfaces: [{ name: 'eth0', mac: 'dc:a6:32:00:00:01', addresses: ['192.0.2.77'], internal: false, physical: true }] })),
    store: new FileFactsStore(dir, silentLogger()),
  });
  await moved.report();
  assert.deepEqual(await moved.revalidate(), { inventoryChanged: true, labelsChanged: false });

  const upgraded = new InventoryService({ probe: probeOf(() => facts({ memoryTotalBytes: 16e9, devEntries: ['null', 'ttyS0', 'ttyUSB0'] })), store: new FileFactsStore(dir, silentLogger()) });
  const before = (await upgraded.report()).labels;
  assert.deepEqual(await upgraded.revalidate(), { inventoryChanged: true, labelsChanged: true });
  const after = (await upgraded.report()).labels;
  assert.notDeepEqual(after, before);
  assert.equal(after['device.serial'], 'true');
}));

test('the kept copy is written only when the facts changed', withDir('tsunagu-facts-', async (dir) => {
  const path = join(dir, 'facts.json');
  await new InventoryService({ probe: probeOf(() => facts()), store: new FileFactsStore(dir, silentLogger()) }).report();
  const written = statSync(path).mtimeMs;
  writeFileSync(join(dir, 'marker'), '');
  const again = new InventoryService({ probe: probeOf(() => facts()), store: new FileFactsStore(dir, silentLogger()) });
  await again.report();
  await again.revalidate();
  assert.equal(statSync(path).mtimeMs, written, 'same facts, same file');
}));

test('a damaged kept copy is moved aside and the machine is read', withDir('tsunagu-facts-', async (dir) => {
  writeFileSync(join(dir, 'facts.json'), '\0\0\0\0');
  const probe = probeOf(() => facts());
  const inventory = new InventoryService({ probe, store: new FileFactsStore(dir, silentLogger()) });
  assert.equal((await inventory.report()).arch, 'arm64');
  assert.equal(probe.reads, 1);
  assert.ok(existsSync(join(dir, 'facts.json.bad')), "existsSync(join(dir, 'facts.json.bad'))");
  assert.match(readFileSync(join(dir, 'facts.json'), 'utf8'), /"machine": "aarch64"/);
}));
