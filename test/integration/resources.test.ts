import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InventoryReportSchema, MetricsReportSchema } from '../../protocol/reports.js';
import { InventoryService } from '../../agent/resources/inventory.js';
import { MetricsSampler } from '../../agent/resources/metrics-sampler.js';
import { SystemProbe } from '../../agent/resources/system-probe.js';
import { resourceProbeContract } from '../support/resource-probe-contract.js';

// Runs against THIS machine: no fakes, so it proves the adapter's output fits the wire format.

resourceProbeContract('SystemProbe', () => new SystemProbe());

test('a real inventory validates against the wire schema', async () => {
  const service = new InventoryService({ probe: new SystemProbe() });
  const inventory = await service.report('docker 27.3.1');
  const parsed = InventoryReportSchema.parse(inventory);
  assert.equal(parsed.v, 1);
  assert.equal(parsed.os.platform, 'linux');
  assert.equal(parsed.labels.os, 'linux');
  const expectedArch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: '386' };
  if (expectedArch[process.arch] !== undefined) assert.equal(parsed.arch, expectedArch[process.arch]);
  else assert.notEqual(parsed.arch, 'unknown');
  assert.ok(parsed.cpu.cores >= 1, 'parsed.cpu.cores >= 1');
  assert.ok(parsed.memory.totalBytes > 64 * 1024 * 1024, 'parsed.memory.totalBytes > 64 * 1024 * 1024');
  assert.ok(parsed.filesystems.some((f) => f.mount === '/'), 'the root filesystem is listed');
  assert.ok(parsed.network.every((n) => n.name !== 'lo'), 'no loopback');
  assert.equal(parsed.containerRuntime, 'docker 27.3.1');
  assert.equal(parsed.labels.runtime, 'docker');

  const facts = await service.hardwareFacts();
  assert.equal(facts.arch, parsed.arch);
  for (const mac of facts.macs) assert.match(mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
});

test('the inventory is read once and re-read only on refresh', async () => {
  const real = new SystemProbe();
  let reads = 0;
  const counting = {
    readStatic: () => {
      reads++;
      return real.readStatic();
    },
    sample: () => real.sample(),
    listDevEntries: () => real.listDevEntries(),
  };
  const service = new InventoryService({ probe: counting });
  await Promise.all([service.report(), service.report()]);
  await service.report();
  assert.equal(reads, 1);
  await service.refresh();
  assert.equal(reads, 2);
  assert.equal(await service.refreshDevices(), false, 'nothing was plugged in meanwhile');
  assert.equal(reads, 2, 'a hot-plug check does not re-read the static facts');
});

test('real metrics validate against the wire schema, with rates from two samples', async () => {
  const sampler = new MetricsSampler(new SystemProbe());
  const initial = MetricsReportSchema.parse(await sampler.next());
  assert.deepEqual(initial.network, [], 'no rates without a previous sample');
  await new Promise((r) => setTimeout(r, 200));
  const report = MetricsReportSchema.parse(await sampler.next([{ name: 'web', cpu: 0.25, memoryBytes: 1024 }]));
  assert.ok(report.memory.usedBytes > 0 && report.memory.usedBytes <= report.memory.totalBytes, 'report.memory.usedBytes > 0 && report.memory.usedBytes <= report.memory.totalBytes');
  assert.ok(report.filesystems.some((f) => f.mount === '/'), "report.filesystems.some((f) => f.mount === '/')");
  assert.ok(report.uptimeSec > 0, 'report.uptimeSec > 0');
  assert.equal(report.services?.[0]?.name, 'web');
  assert.ok(report.network.length > 0, 'at least one non-loopback interface has counters');
});
