import { readFileSync } from 'node:fs';
import { arch, hostname, networkInterfaces } from 'node:os';
import type { DeviceClaim } from '../../protocol/enrollment.js';

/**
 * The hardware facts a device presents when it enrolls. Read straight from
 * the kernel's files (no child processes): enrollment runs at first boot on
 * devices where every spawn is slow.
 */
function firstReadable(paths: string[]): string | undefined {
  for (const p of paths) {
    try {
      const text = readFileSync(p, 'utf8').replace(/\0/g, '').trim();
      if (text !== '' && !/^(none|default string|to be filled by o\.e\.m\.|not specified)$/i.test(text)) return text;
    } catch {
      // not present on this board
    }
  }
  return undefined;
}

function cpuinfoSerial(): string | undefined {
  try {
    const m = /^Serial\s*:\s*([0-9a-fA-F]+)\s*$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m?.[1] !== undefined && !/^0+$/.test(m[1]) ? m[1] : undefined;
  } catch {
    return undefined;
  }
}

/** Normalise Node's arch names to the OCI/Go names images use. */
export function ociArch(nodeArch: string): string {
  switch (nodeArch) {
    case 'x64': return 'amd64';
    case 'arm64': return 'arm64';
    case 'arm': return 'arm';
    case 'ia32': return '386';
    default: return nodeArch;
  }
}

export function macAddresses(): string[] {
  const macs = new Set<string>();
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (!a.internal && a.mac !== '00:00:00:00:00:00') macs.add(a.mac.toLowerCase());
  }
  return [...macs].sort().slice(0, 64);
}

export function deviceFacts(overrides: Partial<Pick<DeviceClaim, 'serial' | 'model'>> = {}): Omit<DeviceClaim, 'claimToken'> {
  const serial = overrides.serial
    ?? cpuinfoSerial()
    ?? firstReadable(['/sys/firmware/devicetree/base/serial-number', '/sys/class/dmi/id/product_serial', '/sys/class/dmi/id/product_uuid', '/etc/machine-id'])
    ?? hostname();
  const model = overrides.model
    ?? firstReadable(['/sys/firmware/devicetree/base/model', '/sys/class/dmi/id/product_name'])
    ?? 'unknown';
  return { serial: serial.slice(0, 128), model: model.slice(0, 256), arch: ociArch(arch()), macs: macAddresses(), hostname: hostname().slice(0, 255) };
}
