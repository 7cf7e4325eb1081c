import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDisplayClass, isStorageDisk, lookupPciIds, parseCpuinfo, parseOsRelease } from '../../agent/resources/static-parsers.js';

const PI4_CPUINFO = `processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3

processor\t: 1
CPU implementer\t: 0x41
CPU part\t: 0xd08

processor\t: 2
CPU implementer\t: 0x41
CPU part\t: 0xd08

processor\t: 3
CPU implementer\t: 0x41
CPU part\t: 0xd08

Hardware\t: BCM2835
Revision\t: c03111
Serial\t\t: 10000000abcdef01
Model\t\t: Raspberry Pi 4 Model B Rev 1.1
`;

const X86_CPUINFO = [0, 1, 2, 3].map((n) => `processor\t: ${n}
vendor_id\t: GenuineIntel
model name\t: Intel(R) Core(TM) i5-8250U CPU @ 1.60GHz
physical id\t: 0
core id\t\t: ${n % 2}
`).join('\n');

test('cpuinfo: a Pi 4 is an ARM Cortex-A72 with 4 cores and its serial', () => {
  assert.deepEqual(parseCpuinfo(PI4_CPUINFO), { model: 'ARM Cortex-A72', cores: 4, physicalCores: 4, serial: '10000000abcdef01' });
});

test('cpuinfo: x86 names the model and counts physical cores by (package, core)', () => {
  assert.deepEqual(parseCpuinfo(X86_CPUINFO), { model: 'Intel(R) Core(TM) i5-8250U CPU @ 1.60GHz', cores: 4, physicalCores: 2 });
});

test('cpuinfo: a 32-bit Pi OS prefers the part name to the generic ARMv7 model name; unknown parts keep ids', () => {
  const v7 = 'processor\t: 0\nmodel name\t: ARMv7 Processor rev 3 (v7l)\nCPU implementer\t: 0x41\nCPU part\t: 0xd03\n\nSerial\t\t: 0000000000000000\n';
  assert.deepEqual(parseCpuinfo(v7), { model: 'ARM Cortex-A53', cores: 1, physicalCores: 1 });
  const carmel = 'processor\t: 0\nCPU implementer\t: 0x4e\nCPU part\t: 0x004\n';
  assert.equal(parseCpuinfo(carmel).model, 'NVIDIA part 0x004');
  assert.deepEqual(parseCpuinfo(''), { model: 'unknown', cores: 0, physicalCores: 0 });
});

test('os-release: quoted and unquoted values, escapes, and defaults', () => {
  assert.deepEqual(parseOsRelease('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'), { distro: 'Debian GNU/Linux', release: '12' });
  assert.deepEqual(parseOsRelease("NAME='Alpine \\\"Linux\\\"'\nVERSION_ID=3.20.1\n# comment\n"), { distro: 'Alpine "Linux"', release: '3.20.1' });
  assert.deepEqual(parseOsRelease('NAME=Arch Linux\nBUILD_ID=rolling\n'), { distro: 'Arch Linux', release: 'rolling' });
  assert.deepEqual(parseOsRelease(''), { distro: 'Linux', release: '' });
});

test('block devices: real disks only', () => {
  for (const name of ['sda', 'vda', 'nvme0n1', 'mmcblk0', 'mmcblk1', 'hda', 'xvda']) assert.equal(isStorageDisk(name), true, name);
  for (const name of ['loop0', 'ram0', 'zram0', 'dm-0', 'md127', 'sr0', 'fd0', 'nbd3', 'mtdblock0', 'zd0', 'mmcblk0boot0', 'mmcblk0boot1', 'mmcblk0rpmb']) {
    assert.equal(isStorageDisk(name), false, name);
  }
});

test('PCI: display class and pci.ids names', () => {
  assert.equal(isDisplayClass('0x030000\n'), true);
  assert.equal(isDisplayClass('0x030200'), true);
  assert.equal(isDisplayClass('0x020000'), false);
  const ids = '# pci.ids\n10de  NVIDIA Corporation\n\t1c82  GP107 [GeForce GTX 1050 Ti]\n\t\t1043 8613  Phoenix GeForce GTX 1050 Ti\n\t2504  GA106 [GeForce RTX 3060 Lite Hash Rate]\n10df  Emulex Corporation\n\t2504  Not this one\n';
  assert.deepEqual(lookupPciIds(ids, '0x10de', '0x2504'), { vendor: 'NVIDIA Corporation', device: 'GA106 [GeForce RTX 3060 Lite Hash Rate]' });
  assert.deepEqual(lookupPciIds(ids, '10de', 'ffff'), { vendor: 'NVIDIA Corporation' });
  assert.deepEqual(lookupPciIds(ids, '1234', '1111'), {});
});
