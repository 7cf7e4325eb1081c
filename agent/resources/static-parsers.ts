/*
 * Pure parsers for the files the static facts come from (os-release,
 * /proc/cpuinfo, sysfs block and PCI entries, pci.ids). The adapter
 * (system-probe.ts) reads; these take text and return data, so they are
 * tested on fixtures of boards we do not have at hand.
 */

/** `NAME` and `VERSION_ID` of os-release(5): "Debian GNU/Linux", "12". */
export function parseOsRelease(text: string): { distro: string; release: string } {
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m === null) continue;
    // Values may be quoted with " or ' and use backslash escapes inside double quotes.
    const raw = m[2]!.trim();
    const quoted = /^"(.*)"$/.exec(raw) ?? /^'(.*)'$/.exec(raw);
    values.set(m[1]!, quoted === null ? raw : quoted[1]!.replace(/\\(.)/g, '$1'));
  }
  return { distro: values.get('NAME') ?? 'Linux', release: values.get('VERSION_ID') ?? values.get('BUILD_ID') ?? '' };
}

/** ARM's own cores by `CPU part` (implementer 0x41), as lscpu names them. */
const ARM_PARTS: Record<string, string> = {
  '0xb76': 'ARM1176', '0xc07': 'Cortex-A7', '0xc08': 'Cortex-A8', '0xc09': 'Cortex-A9', '0xc0d': 'Cortex-A12',
  '0xc0e': 'Cortex-A17', '0xc0f': 'Cortex-A15', '0xd03': 'Cortex-A53', '0xd04': 'Cortex-A35', '0xd05': 'Cortex-A55',
  '0xd07': 'Cortex-A57', '0xd08': 'Cortex-A72', '0xd09': 'Cortex-A73', '0xd0a': 'Cortex-A75', '0xd0b': 'Cortex-A76',
  '0xd0c': 'Neoverse-N1', '0xd0d': 'Cortex-A77', '0xd40': 'Neoverse-V1', '0xd41': 'Cortex-A78', '0xd44': 'Cortex-X1',
  '0xd46': 'Cortex-A510', '0xd47': 'Cortex-A710', '0xd49': 'Neoverse-N2', '0xd4d': 'Cortex-A715',
};

const IMPLEMENTERS: Record<string, string> = {
  '0x41': 'ARM', '0x42': 'Broadcom', '0x43': 'Cavium', '0x46': 'Fujitsu', '0x48': 'HiSilicon', '0x4e': 'NVIDIA',
  '0x50': 'APM', '0x51': 'Qualcomm', '0x53': 'Samsung', '0x56': 'Marvell', '0x61': 'Apple', '0x69': 'Intel',
};

/**
 * CPU model, core counts and (on a Pi) the board serial from /proc/cpuinfo. x86 names the model in
 * `model name` and tells physical cores by (physical id, core id); ARM boards
 * name only an implementer and a part number (a Pi 4: 0x41/0xd08, "ARM
 * Cortex-A72"), and their `model name`, when present, is the generic
 * "ARMv7 Processor rev 3 (v7l)".
 */
export function parseCpuinfo(text: string): { model: string; cores: number; physicalCores: number; serial?: string } {
  const blocks = text.split(/\n\s*\n/).map((block) => {
    const fields = new Map<string, string>();
    for (const line of block.split('\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) fields.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    return fields;
  });
  const processors = blocks.filter((b) => b.has('processor'));
  const first = processors[0] ?? blocks[0] ?? new Map<string, string>();
  const implementer = first.get('cpu implementer')?.toLowerCase();
  const part = first.get('cpu part')?.toLowerCase();
  let model = first.get('model name') ?? first.get('cpu model') ?? '';
  if (implementer !== undefined && part !== undefined) {
    const vendor = IMPLEMENTERS[implementer] ?? `implementer ${implementer}`;
    const core = implementer === '0x41' ? ARM_PARTS[part] : undefined;
    model = core !== undefined ? `${vendor} ${core}` : model !== '' && !/^ARMv\d/.test(model) ? model : `${vendor} part ${part}`;
  }
  const cores = processors.length;
  const physical = new Set(processors.filter((b) => b.has('core id')).map((b) => `${b.get('physical id') ?? '0'}/${b.get('core id')}`));
  // Raspberry Pi firmware puts the board serial in a trailing block; all zeros means none.
  const serial = blocks.map((b) => b.get('serial')).find((v) => v !== undefined && !/^0*$/.test(v));
  return { model: model || 'unknown', cores, physicalCores: physical.size > 0 ? physical.size : cores, ...(serial === undefined ? {} : { serial }) };
}

/**
 * Entries of /sys/block that are storage an operator schedules on: not
 * loop devices (snaps, images), RAM disks and zram (compressed RAM), device
 * mapper and md (views of other disks), optical and floppy drives, network
 * block devices, raw NOR flash, nor the boot and RPMB hardware partitions of
 * an eMMC (mmcblk0boot0, mmcblk0rpmb), which hold firmware, not data.
 */
export function isStorageDisk(name: string): boolean {
  return !/^(loop|ram|zram|dm-|md|sr|fd|nbd|mtdblock|zd)/.test(name) && !/^mmcblk\d+(boot\d+|rpmb)$/.test(name);
}

/** Display controllers are PCI base class 0x03 (VGA, XGA, 3D, other). */
export function isDisplayClass(classText: string): boolean {
  return /^0x03[0-9a-f]{4}$/i.test(classText.trim());
}

/**
 * Vendor and device names from a pci.ids database (what lspci prints):
 * vendors at the start of a line, their devices indented by one tab.
 * Undefined names are left to the caller (hex ids).
 */
export function lookupPciIds(text: string, vendorId: string, deviceId: string): { vendor?: string; device?: string } {
  const v = vendorId.replace(/^0x/i, '').toLowerCase();
  const d = deviceId.replace(/^0x/i, '').toLowerCase();
  const out: { vendor?: string; device?: string } = {};
  let inVendor = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    if (!line.startsWith('\t')) {
      if (inVendor) break; // past our vendor's devices
      if (line.slice(0, 4).toLowerCase() === v && line[4] === ' ') {
        out.vendor = line.slice(4).trim();
        inVendor = true;
      }
      continue;
    }
    if (inVendor && !line.startsWith('\t\t') && line.slice(1, 5).toLowerCase() === d && line[5] === ' ') {
      out.device = line.slice(5).trim();
      break;
    }
  }
  return out;
}

/** Display-controller vendors worth a name when no pci.ids is installed (minimal images rarely have one). */
export const KNOWN_GPU_VENDORS: Record<string, string> = {
  '10de': 'NVIDIA Corporation',
  '1002': 'Advanced Micro Devices, Inc. [AMD/ATI]',
  '8086': 'Intel Corporation',
  '1a03': 'ASPEED Technology, Inc.',
  '1af4': 'Red Hat, Inc. (virtio)',
  '1b36': 'Red Hat, Inc.',
  '15ad': 'VMware',
  '80ee': 'InnoTek Systemberatung GmbH',
  '1234': 'QEMU (Bochs)',
  '1013': 'Cirrus Logic',
  '1414': 'Microsoft Corporation',
};
