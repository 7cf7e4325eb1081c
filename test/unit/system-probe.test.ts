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
  assert.ok(MetricsReportSchema.safeParse(computeMetrics(undefined, s)).success);
  assert.deepEqual(await probe.listDevEntries(), ['ttyUSB0', 'video0']);
});

test('a machine without thermal zones has no temperature; a missing /proc file is PROBE_FAILED', async () => {
  const noThermal = new SystemProbe({ proc: join(root, 'proc'), sys: join(root, 'nowhere') });
  assert.equal((await noThermal.sample()).temperatureC, undefined);
  const broken = new SystemProbe({ proc: join(root, 'missing') });
  await assert.rejects(broken.sample(), (e) => isTsunaguError(e, 'PROBE_FAILED'));
});

test('static facts come from the files of the board: DMI or device tree, cpuinfo, os-release, /sys/block, PCI', async () => {
  const board = mkdtempSync(join(tmpdir(), 'probe-board-'));
  const at = (path: string, text: string): void => {
    mkdirSync(dirname(join(board, path)), { recursive: true });
    writeFileSync(join(board, path), text);
  };
  try {
    at('proc/cpuinfo', 'processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n\nprocessor\t: 1\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n\nSerial\t\t: 10000000abcdef01\n');
    at('proc/meminfo', 'MemTotal:        3884136 kB\n');
    at('proc/mounts', '/dev/root / ext4 rw 0 0\n');
    at('proc/sys/kernel/osrelease', '6.6.31+rpt-rpi-v8\n');
    at('proc/device-tree/model', 'Raspberry Pi 4 Model B Rev 1.4\0');
    at('usr/lib/os-release', 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\n');
    at('sys/block/mmcblk0/size', '62333952\n');
    at('sys/block/mmcblk0/removable', '0\n');
    at('sys/block/mmcblk0/device/name', 'SN32G\n');
    at('sys/block/mmcblk0boot0/size', '8192\n');
    at('sys/block/mmcblk0boot0/device/name', 'SN32G\n');
    at('sys/block/zram0/size', '1000\n');
    at('sys/block/sda/size', '1000\n');
    at('sys/block/sda/removable', '1\n');
    at('sys/block/sda/device/model', 'Cruzer Blade    \n');
    at('sys/bus/pci/devices/0000:01:00.0/class', '0x030000\n');
    at('sys/bus/pci/devices/0000:01:00.0/vendor', '0x10de\n');
    at('sys/bus/pci/devices/0000:01:00.0/device', '0x2504\n');
    at('sys/bus/pci/devices/0000:00:14.0/class', '0x0c0330\n');
    at('sys/class/net/eth0/address', 'dc:a6:32:00:00:01\n');
    at('sys/class/net/eth0/type', '1\n');
    at('sys/class/net/eth0/device/vendor', '');
    at('share/pci.ids', '10de  NVIDIA Corporation\n\t2504  GA106 [GeForce RTX 3060 Lite Hash Rate]\n');
    at('dev/gpiochip0', '');
    const probe = new SystemProbe({
      proc: join(board, 'proc'), sys: join(board, 'sys'), dev: join(board, 'dev'), etc: join(board, 'etc'), usrLib: join(board, 'usr/lib'),
      pciIdsPaths: [join(board, 'nowhere/pci.ids'), join(board, 'share/pci.ids')],
    });
    const f = await probe.readStatic();
    assert.deepEqual(f.hardware, { model: 'Raspberry Pi 4 Model B Rev 1.4', serial: '10000000abcdef01' });
    assert.deepEqual(f.os, { platform: 'linux', distro: 'Debian GNU/Linux', release: '12', kernel: '6.6.31+rpt-rpi-v8' });
    assert.deepEqual(f.cpu, { model: 'ARM Cortex-A72', cores: 2, physicalCores: 2 });
    assert.equal(f.memoryTotalBytes, 3884136 * 1024);
    // zram has no device link and eMMC boot partitions hold firmware: neither is a disk.
    assert.deepEqual(f.disks, [
      { name: 'mmcblk0', sizeBytes: 62333952 * 512, removable: false, model: 'SN32G' },
      { name: 'sda', sizeBytes: 512000, removable: true, model: 'Cruzer Blade' },
    ]);
    assert.deepEqual(f.graphics, [{ vendor: 'NVIDIA Corporation', model: 'GA106 [GeForce RTX 3060 Lite Hash Rate]' }]);
    assert.deepEqual(f.interfaces.map((i) => [i.name, i.mac, i.physical]), [['eth0', 'dc:a6:32:00:00:01', true]]);
    assert.deepEqual(f.devEntries, ['gpiochip0']);
  } finally {
    rmSync(board, { recursive: true, force: true });
  }
});

test('static facts without pci.ids name a known GPU vendor and keep the ids', async () => {
  const board = mkdtempSync(join(tmpdir(), 'probe-board-'));
  try {
    for (const [file, text] of [['class', '0x030200'], ['vendor', '0x10de'], ['device', '0x1eb8']]) {
      mkdirSync(join(board, 'sys/bus/pci/devices/0000:3b:00.0'), { recursive: true });
      writeFileSync(join(board, 'sys/bus/pci/devices/0000:3b:00.0', file!), `${text}\n`);
    }
    mkdirSync(join(board, 'proc'));
    writeFileSync(join(board, 'proc/mounts'), '');
    mkdirSync(join(board, 'dev'));
    const f = await new SystemProbe({ proc: join(board, 'proc'), sys: join(board, 'sys'), dev: join(board, 'dev'), etc: board, usrLib: board, pciIdsPaths: [] }).readStatic();
    assert.deepEqual(f.graphics, [{ vendor: 'NVIDIA Corporation', model: 'PCI device 10de:1eb8' }]);
    assert.deepEqual(f.os.distro, 'Linux');
    assert.deepEqual(f.disks, []);
  } finally {
    rmSync(board, { recursive: true, force: true });
  }
});
