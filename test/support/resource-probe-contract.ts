import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ResourceProbe } from '../../agent/resources/probe.js';

/**
 * What every ResourceProbe must guarantee to the pure code above it. Run
 * against each adapter; the pure code's unit tests may then rely on it.
 */
export function resourceProbeContract(name: string, makeProbe: () => ResourceProbe): void {
  test(`${name}: static facts are plausible and /dev entries are bare names`, async () => {
    const facts = await makeProbe().readStatic();
    assert.ok(facts.machine.length > 0, 'facts.machine.length > 0');
    assert.ok(facts.cpu.cores >= 1 && facts.cpu.physicalCores >= 1, 'facts.cpu.cores >= 1 && facts.cpu.physicalCores >= 1');
    assert.ok(Number.isSafeInteger(facts.memoryTotalBytes) && facts.memoryTotalBytes > 0, 'Number.isSafeInteger(facts.memoryTotalBytes) && facts.memoryTotalBytes > 0');
    assert.ok(facts.devEntries.length > 0 && facts.devEntries.every((n) => n !== '' && !n.includes('/')), "facts.devEntries.length > 0 && facts.devEntries.every((n) => n !== '' && !n.includes('/'))");
    assert.ok(facts.interfaces.every((i) => i.name !== '' && i.addresses.every((a) => a !== '')), "facts.interfaces.every((i) => i.name !== '' && i.addresses.every((a) => a !== ''))");
    assert.ok(facts.filesystems.every((f) => f.mount.startsWith('/') && f.sizeBytes >= 0), "facts.filesystems.every((f) => f.mount.startsWith('/') && f.sizeBytes >= 0)");
  });

  test(`${name}: successive samples have monotonic clocks and counters, and consistent sizes`, async () => {
    const probe = makeProbe();
    const a = await probe.sample();
    const b = await probe.sample();
    assert.ok(b.monotonicMs >= a.monotonicMs, 'b.monotonicMs >= a.monotonicMs');
    assert.ok(b.cpuTicks.total >= a.cpuTicks.total && b.cpuTicks.busy >= a.cpuTicks.busy, 'b.cpuTicks.total >= a.cpuTicks.total && b.cpuTicks.busy >= a.cpuTicks.busy');
    assert.ok(a.cpuTicks.busy <= a.cpuTicks.total, 'a.cpuTicks.busy <= a.cpuTicks.total');
    assert.ok(b.memory.availableBytes <= b.memory.totalBytes, 'b.memory.availableBytes <= b.memory.totalBytes');
    for (const f of b.filesystems) assert.ok(f.availableBytes <= f.freeBytes && f.freeBytes <= f.sizeBytes, f.mount);
    for (const n of b.network) {
      assert.ok(n.name !== 'lo', "n.name !== 'lo'");
      const before = a.network.find((x) => x.name === n.name);
      if (before) assert.ok(n.rxBytes >= before.rxBytes && n.txBytes >= before.txBytes, n.name);
    }
    assert.ok(b.loadAvg.every((x) => x >= 0), 'b.loadAvg.every((x) => x >= 0)');
  });

  test(`${name}: listing /dev gives sorted bare names`, async () => {
    const entries = await makeProbe().listDevEntries();
    assert.ok(entries.includes('null'), '/dev/null exists on every Linux system');
    assert.deepEqual(entries, [...entries].sort());
  });
}
