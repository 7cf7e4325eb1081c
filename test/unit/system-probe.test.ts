import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { computeMetrics } from '../../agent/resources/metrics.js';
import { SystemProbe } from '../../agent/resources/system-probe.js';
import { isTsunaguError } from '../../protocol/errors.js';
import { MetricsReportSchema } from '../../protocol/reports.js';

// The real adapter's periodic sample run against a fixture /proc and /sys
// (this machine has no thermal zones, a Raspberry Pi has one).

const root = mkdtempSync(join(tmpdir(), 'probe-fixture-'));
after(() => rmSync(root, { recursive: true, force: true }));

function put(path: string, text: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
}

put('proc/stat', 'cpu  4705 356 584 3699176 23 23 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n');
put('proc/meminfo', 'MemTotal:        3884136 kB\nMemFree:          100000 kB\nMemAvailable:    3000000 kB\n');
put('proc/loadavg', '0.42 0.30 0.25 1/123 4567\n');
put('proc/net/dev', 'Inter-| Receive | Transmit\n face |bytes packets|bytes\n    lo: 10 1 0 0 0 0 0 0 10 1 0 0 0 0 0 0\n  eth0: 5000 10 0 0 0 0 0 0 7000 12 0 0 0 0 0 0\n');
// The root filesystem is real (statfs needs a real mount); the NFS one must be skipped without being touched.
put('proc/mounts', '/dev/root / ext4 rw 0 0\nnas:/share /mnt/nas nfs4 rw 0 0\n');
put('sys/class/thermal/thermal_zone0/temp', '47234\n');
put('sys/class/thermal/thermal_zone1/temp', '52000\n');
put('sys/class/thermal/cooling_device0/cur_state', '0\n');
put('dev/ttyUSB0', '');
put('dev/video0', '');

test('the periodic sample reads the kernel files it is pointed at', async () => {
  const probe = new SystemProbe({ proc: join(root, 'proc'), sys: join(root, 'sys'), dev: join(root, 'dev') });
  const s = await probe.sample();
  assert.deepEqual(s.cpuTicks, { busy: 4705 + 356 + 584 + 23, total: 4705 + 356 + 584 + 3699176 + 23 + 23 });
  assert.deepEqual(s.memory, { totalBytes: 3884136 * 1024, availableBytes: 3000000 * 1024 });
  assert.deepEqual(s.loadAvg, [0.42, 0.3, 0.25]);
  assert.deepEqual(s.network, [{ name: 'eth0', rxBytes: 5000, txBytes: 7000 }]);
  assert.equal(s.temperatureC, 52, 'the hottest zone');
  assert.deepEqual(s.filesystems.map((f) => f.mount), ['/']);
  assert.ok(MetricsReportSchema.safeParse(computeMetrics(undefined, s)).success, 'MetricsReportSchema.safeParse(computeMetrics(undefined, s)).success');
  assert.deepEqual(await probe.listDevEntries(), ['ttyUSB0', 'video0']);
});

test('a machine without thermal zones has no temperature; a missing /proc file is PROBE_FAILED', async () => {
  const noThermal = new SystemProbe({ proc: join(root, 'proc'), sys: join(root, 'nowhere') });
  assert.equal((await noThermal.sample()).temperatureC, undefined);
  const broken = new SystemProbe({ proc: join(root, 'missing') });
  await assert.rejects(broken.sample(), (e) => isTsunaguError(e, 'PROBE_FAILED'));
});
