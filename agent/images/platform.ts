import { machine } from 'node:os';
import { normalizeArch } from '../resources/arch.js';

/** An OCI platform as image indexes and configs name it (`linux`, `arm`, `v7`). */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/**
 * This device's platform in OCI terms: `uname -m` and Node's own
 * architecture, through the inventory's mapping (a 32-bit userland on a
 * 64-bit kernel runs `arm/v7` images, as its engine pulls them).
 */
export function devicePlatform(machineName: string = machine(), processArch: string = process.arch): Platform {
  const [architecture = 'unknown', variant] = normalizeArch(machineName, processArch).split('/');
  return variant === undefined ? { os: 'linux', architecture } : { os: 'linux', architecture, variant };
}

/** `linux/arm/v7`, `linux/amd64`. */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, ...(p.variant === undefined || p.variant === '' ? [] : [p.variant])].join('/');
}

/** Docker's default for an arm image without a variant is v7; arm64's only variant is v8. */
function armLevel(variant: string | undefined, fallback: number): number {
  const m = /^v(\d+)$/.exec(variant ?? '');
  return m ? Number(m[1]) : fallback;
}

/**
 * Whether a device of platform `device` runs an image built for `image`:
 * same OS and architecture; for 32-bit arm, an image of the device's ARM
 * level or an older one (a v7 board runs v6 and v5 images, a v6 board no v7
 * image). Nothing crosses architectures: an arm64 device is not assumed to
 * run 32-bit arm images (that depends on its kernel), nor amd64 386 ones.
 * Entries an index lists for attestations (`unknown/unknown`) match nothing.
 */
export function platformRuns(device: Platform, image: Platform): boolean {
  if (image.os !== device.os || image.architecture !== device.architecture) return false;
  if (device.architecture === 'arm') return armLevel(image.variant, 7) <= armLevel(device.variant, 7);
  if (device.architecture === 'arm64') return armLevel(image.variant, 8) === 8;
  return true;
}

/** The first platform of `available` the device runs, preferring an exact variant match. */
export function bestPlatform<T extends Platform>(device: Platform, available: readonly T[]): T | undefined {
  const runnable = available.filter((p) => platformRuns(device, p));
  return runnable.find((p) => (p.variant ?? '') === (device.variant ?? '')) ?? runnable.sort((a, b) => armLevel(b.variant, 0) - armLevel(a.variant, 0))[0];
}
