import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalizeArch } from '../../agent/resources/arch.js';
import { classifyDevices, findAccelerators } from '../../agent/resources/devices.js';
import { InventoryService, buildInventory, hardwareFacts } from '../../agent/resources/inventory.js';
import { deriveLabels, memoryClass } from '../../agent/resources/device-labels.js';
import { computeMetrics } from '../../agent/resources/metrics.js';
import type { RawSample, ResourceProbe, StaticFacts } from '../../agent/resources/probe.js';
import { parseMeminfo, parseMounts, parseNetDev, parseProcStat, selectLocalFilesystems } from '../../agent/resources/proc.js';
import { InventoryReportSchema, MetricsReportSchema } from '../../protocol/reports.js';

const GiB = 1024 ** 3;

function facts(over: Partial<StaticFacts> = {}): StaticFacts {
  return {
    hardware: { model: 'Raspberry Pi 4 Model B Rev 1.4', serial: '10000000abcdef01' },
    os: { platform: 'linux', distro: 'Debian GNU/Linux', release: '12', kernel: '6.6.31+rpt-rpi-v8' },
    machine: 'aarch64',
    processArch: 'arm64',
    cpu: { model: 'ARM Cortex-A72', cores: 4, physicalCores: 4 },
    memoryTotalBytes: Math.round(3.7 * GiB),
    disks: [{ name: 'mmcblk0', sizeBytes: 32e9, removable: false }],
    filesystems: [{ mount: '/', device: '/dev/mmcblk0p2', type: 'ext4', sizeBytes: 30e9 }],
    interfaces: [
      { name: 'lo', mac: '00:00:00:00:00:00', addresses: ['127.0.0.1'], internal: true, physical: false },
      { name: 'eth0', mac: 'DC:A6:32:00:00:01', addresses: ['192.0.2.10'], internal: false, physical: true },
      { name: 'wlan0', mac: 'dc:a6:32:00:00:02', addresses: [], internal: false, physical: true },
      { name: 'docker0', mac: '02:42:00:00:00:01', addresses: ['172.17.0.1'], internal: false, physical: false },
      { name: 'veth1234', mac: '02:42:00:00:00:02', addresses: [], internal: false, physical: false },
      { name: 'wg0', addresses: ['10.0.0.2'], internal: false, physical: false },
    ],
    graphics: [],
    devEntries: ['null', 'ttyUSB0', 'ttyAMA0', 'tty1', 'video0', 'video10', 'gpiochip0', 'gpiochip1', 'video0.bak', 'ttyS0'],
    ...over,
  };
}

test('architectures normalise to Go/OCI names', () => {
  const cases: [string, string | undefined, string][] = [
    ['x86_64', 'x64', 'amd64'],
    ['aarch64', 'arm64', 'arm64'],
    ['armv7l', 'arm', 'arm/v7'],
    ['armv6l', 'arm', 'arm/v6'],
    ['armv5tel', undefined, 'arm/v5'],
    ['i686', 'ia32', '386'],
    ['riscv64', 'riscv64', 'riscv64'],
    ['ppc64le', 'ppc64', 'ppc64le'],
    // 64-bit kernel, 32-bit Raspberry Pi OS userland: containers are arm/v7.
    ['aarch64', 'arm', 'arm/v7'],
    ['armv8l', 'arm', 'arm/v7'],
    ['x86_64', 'ia32', '386'],
    ['  AARCH64\n', undefined, 'arm64'],
    ['something-new', 'arm64', 'arm64'],
    ['something-new', undefined, 'unknown'],
  ];
  for (const [machine, node, want] of cases) assert.equal(normalizeArch(machine, node), want, `${machine}/${node}`);
});

test('memory classes follow the documented thresholds', () => {
  assert.equal(memoryClass(0.45 * GiB), 'small'); // Pi Zero 512 MB
  assert.equal(memoryClass(0.9 * GiB), 'small'); // 1 GB board
  assert.equal(memoryClass(1.5 * GiB - 1), 'small');
  assert.equal(memoryClass(1.5 * GiB), 'medium');
  assert.equal(memoryClass(3.7 * GiB), 'medium'); // 4 GB board
  assert.equal(memoryClass(6 * GiB - 1), 'medium');
  assert.equal(memoryClass(7.6 * GiB), 'large'); // 8 GB board
});

test('labels are derived from the inventory alone, booleans always present', () => {
  const inv = buildInventory(facts(), 0);
  assert.deepEqual(inv.labels, {
    os: 'linux',
    arch: 'arm64',
    memory: 'medium',
    'cpu.cores': '4',
    gpu: 'false',
    'accelerator.npu': 'false',
    'accelerator.tpu': 'false',
    'device.serial': 'true',
    'device.video': 'true',
    'device.gpio': 'true',
  });
  const { labels: _, ...rest } = inv;
  assert.deepEqual(deriveLabels(rest), inv.labels, 'pure: same input, same labels');
});

test('labels for a bare x86 box with an NVIDIA card, a Coral TPU and a runtime', () => {
  const inv = buildInventory(
    facts({
      machine: 'x86_64',
      processArch: 'x64',
      memoryTotalBytes: 15.5 * GiB,
      devEntries: ['nvidia0', 'nvidiactl', 'apex_0'],
      graphics: [{ vendor: 'NVIDIA Corporation', model: 'GA107 [RTX A2000]', memoryBytes: 6 * GiB }],
    }),
    0,
    'docker 27.3.1',
  );
  assert.equal(inv.labels.arch, 'amd64');
  assert.equal(inv.labels.memory, 'large');
  assert.equal(inv.labels.gpu, 'true');
  assert.equal(inv.labels['accelerator.tpu'], 'true');
  assert.equal(inv.labels['device.serial'], 'false');
  assert.equal(inv.labels.runtime, 'docker');
  assert.equal(inv.accelerators.filter((a) => a.kind === 'gpu').length, 1, '/dev/nvidia0 is the card already listed');
  assert.equal(inv.labels['arch'], 'amd64');
  assert.ok(InventoryReportSchema.safeParse(inv).success, 'InventoryReportSchema.safeParse(inv).success');
});

test('a hypervisor display adapter is not a GPU', () => {
  assert.deepEqual(findAccelerators([{ vendor: 'VMware', model: 'SVGA II Adapter' }], []), []);
  assert.deepEqual(findAccelerators([], ['hailo0']), [{ kind: 'npu', vendor: 'Hailo', model: 'Hailo AI accelerator' }]);
});

test('devices come from anchored /dev names, sorted', () => {
  assert.deepEqual(classifyDevices(['video0.bak', 'ttyACM0', 'video1', 'gpiochip0', 'ttyS0', 'ttyUSB', 'ttyAMA0', 'ttyUSB10']), [
    { path: '/dev/gpiochip0', kind: 'gpio' },
    { path: '/dev/ttyACM0', kind: 'serial' },
    { path: '/dev/ttyAMA0', kind: 'serial' },
    { path: '/dev/ttyUSB10', kind: 'serial' },
    { path: '/dev/video1', kind: 'video' },
  ]);
});

test('the inventory leaves out loopback and container plumbing; hardware facts use physical MACs', () => {
  const inv = buildInventory(facts(), 1234);
  assert.deepEqual(inv.network.map((n) => n.name), ['eth0', 'wlan0', 'wg0']);
  assert.equal(inv.network[0]?.mac, 'dc:a6:32:00:00:01', 'lower-cased');
  assert.deepEqual(hardwareFacts(inv), {
    serial: '10000000abcdef01',
    model: 'Raspberry Pi 4 Model B Rev 1.4',
    arch: 'arm64',
    macs: ['dc:a6:32:00:00:01', 'dc:a6:32:00:00:02'],
  });
});

test('over-long strings from the machine are clipped to the wire limits', () => {
  const inv = buildInventory(facts({ hardware: { model: 'x'.repeat(1000) }, os: { platform: 'linux', distro: 'd'.repeat(500), release: '1', kernel: 'k' } }), 0);
  assert.ok(InventoryReportSchema.safeParse(inv).success, 'InventoryReportSchema.safeParse(inv).success');
  assert.equal(inv.hardware.model?.length, 128);
});

test('/proc parsers', () => {
  assert.deepEqual(parseProcStat('cpu  100 5 50 800 20 3 2 0 7 0\ncpu0 1 2 3 4\n'), { busy: 160, total: 980 });
  assert.equal(parseProcStat('intr 1 2 3\n'), undefined);
  assert.deepEqual(parseMeminfo('MemTotal:        3884136 kB\nMemFree:          123456 kB\nMemAvailable:    2000000 kB\nBuffers: 1 kB\n'), { totalBytes: 3884136 * 1024, availableBytes: 2000000 * 1024 });
  assert.deepEqual(parseMeminfo('MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 200 kB\nSwapCached: 999 kB\n'), { totalBytes: 1024000, availableBytes: 350 * 1024 }, 'pre-3.14 kernels');
  assert.equal(parseMeminfo('garbage'), undefined);
  const netdev = `Inter-|   Receive |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 4384617    1163    0    0    0     0          0         0  4384617    1163    0    0    0     0       0          0
  eth0: 227827877   11149    0    0    0     0          0         0   819243    8068    0    0    0     0       0          0
wlan0:12 1 0 0 0 0 0 0 34 1 0 0 0 0 0 0
`;
  assert.deepEqual(parseNetDev(netdev), [
    { name: 'eth0', rxBytes: 227827877, txBytes: 819243 },
    { name: 'wlan0', rxBytes: 12, txBytes: 34 },
  ]);
  const mounts = parseMounts(
    [
      'proc /proc proc rw 0 0',
      '/dev/mmcblk0p2 / ext4 rw 0 0',
      '/dev/mmcblk0p1 /boot/firmware vfat rw 0 0',
      '/dev/sda1 /media/usb\\040stick exfat rw 0 0',
      '/dev/mmcblk0p2 /var/lib/docker ext4 rw 0 0',
      '/dev/loop3 /snap/core/1 squashfs ro 0 0',
      'server:/x /mnt/nfs nfs4 rw 0 0',
      'tmpfs /run tmpfs rw 0 0',
    ].join('\n'),
  );
  assert.deepEqual(selectLocalFilesystems(mounts).map((m) => m.mount), ['/', '/boot/firmware', '/media/usb stick']);
});

function sample(over: Partial<RawSample> = {}): RawSample {
  return {
    at: 1000,
    monotonicMs: 0,
    uptimeSec: 100,
    cpuTicks: { busy: 100, total: 1000 },
    loadAvg: [0.5, 0.4, 0.3],
    memory: { totalBytes: 1000, availableBytes: 600 },
    filesystems: [{ mount: '/', sizeBytes: 1000, availableBytes: 300, freeBytes: 350 }],
    network: [{ name: 'eth0', rxBytes: 1000, txBytes: 500 }],
    ...over,
  };
}

test('metrics: rates and load from two samples, since-boot load and no rates from one', () => {
  const a = sample();
  const b = sample({ at: 3000, monotonicMs: 2000, cpuTicks: { busy: 250, total: 1200 }, network: [{ name: 'eth0', rxBytes: 5000, txBytes: 700 }, { name: 'wlan0', rxBytes: 9, txBytes: 9 }], temperatureC: 51.5 });
  const first = computeMetrics(undefined, a);
  assert.equal(first.cpu.load, 0.1);
  assert.deepEqual(first.network, []);
  assert.equal(first.temperatureC, undefined);
  const m = computeMetrics(a, b);
  assert.equal(m.cpu.load, 0.75);
  assert.deepEqual(m.network, [{ name: 'eth0', rxBytesPerSec: 2000, txBytesPerSec: 100 }], 'new interface has no rate yet');
  assert.deepEqual(m.memory, { totalBytes: 1000, usedBytes: 400, availableBytes: 600 });
  assert.deepEqual(m.filesystems, [{ mount: '/', sizeBytes: 1000, usedBytes: 650, availableBytes: 300 }]);
  assert.equal(m.temperatureC, 51.5);
  assert.ok(MetricsReportSchema.safeParse(m).success, 'MetricsReportSchema.safeParse(m).success');
});

test('metrics: counters that go backwards give no rate rather than a negative one', () => {
  const a = sample();
  const b = sample({ monotonicMs: 1000, network: [{ name: 'eth0', rxBytes: 10, txBytes: 10 }], cpuTicks: { busy: 50, total: 900 } });
  const m = computeMetrics(a, b);
  assert.deepEqual(m.network, []);
  assert.ok(m.cpu.load >= 0 && m.cpu.load <= 1, 'm.cpu.load >= 0 && m.cpu.load <= 1');
});

test('hot-plug: re-listing /dev reports a change only when devices or accelerators changed', async () => {
  let dev = ['null', 'ttyS0'];
  let staticReads = 0;
  const probe: ResourceProbe = {
    readStatic: () => {
      staticReads++;
      return Promise.resolve(facts({ devEntries: dev }));
    },
    sample: () => Promise.reject(new Error('not used')),
    listDevEntries: () => Promise.resolve(dev),
  };
  const service = new InventoryService({ probe, now: () => 42 });
  assert.equal((await service.report()).labels['device.serial'], 'false');
  dev = ['null', 'ttyS0', 'pts'];
  assert.equal(await service.refreshDevices(), false, 'unrelated entries are not a change');
  dev = ['null', 'ttyS0', 'ttyUSB0', 'hailo0'];
  assert.equal(await service.refreshDevices(), true);
  const inv = await service.report();
  assert.equal(inv.labels['device.serial'], 'true');
  assert.equal(inv.labels['accelerator.npu'], 'true');
  assert.equal(inv.at, 42);
  assert.equal(staticReads, 1);
});

test('the wire schemas refuse what the fleet must not store', () => {
  const inv = buildInventory(facts(), 0);
  assert.ok(InventoryReportSchema.safeParse(inv).success, 'InventoryReportSchema.safeParse(inv).success');
  assert.ok(!InventoryReportSchema.safeParse({ ...inv, v: 2 }).success, '!InventoryReportSchema.safeParse({ ...inv, v: 2 }).success');
  assert.ok(!InventoryReportSchema.safeParse({ ...inv, labels: { 'bad key': 'x' } }).success, "!InventoryReportSchema.safeParse({ ...inv, labels: { 'bad key': 'x' } }).success");
  assert.ok(!InventoryReportSchema.safeParse({ ...inv, labels: { ok: 'no spaces' } }).success, "!InventoryReportSchema.safeParse({ ...inv, labels: { ok: 'no spaces' } }).success");
  assert.ok(!InventoryReportSchema.safeParse({ ...inv, devices: [{ path: '/dev/../etc/passwd x', kind: 'serial' }] }).success, "!InventoryReportSchema.safeParse({ ...inv, devices: [{ path: '/dev/../etc/passwd x', kind: 'seria...");
  assert.ok(!InventoryReportSchema.safeParse({ ...inv, arch: 'ARM 64' }).success, "!InventoryReportSchema.safeParse({ ...inv, arch: 'ARM 64' }).success");
  const m = computeMetrics(undefined, sample());
  assert.ok(MetricsReportSchema.safeParse(m).success, 'MetricsReportSchema.safeParse(m).success');
  assert.ok(!MetricsReportSchema.safeParse({ ...m, cpu: { ...m.cpu, load: 1.5 } }).success, '!MetricsReportSchema.safeParse({ ...m, cpu: { ...m.cpu, load: 1.5 } }).success');
  assert.ok(!MetricsReportSchema.safeParse({ ...m, memory: { ...m.memory, usedBytes: -1 } }).success, '!MetricsReportSchema.safeParse({ ...m, memory: { ...m.memory, usedBytes: -1 } }).success');
});
