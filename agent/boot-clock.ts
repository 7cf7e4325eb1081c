import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { BootInstant } from './commands/fleet-horizon.js';

export interface BootClockPaths {
  bootId: string;
  uptime: string;
}

const LINUX: BootClockPaths = { bootId: '/proc/sys/kernel/random/boot_id', uptime: '/proc/uptime' };

/**
 * The device's boot clock (see fleet-horizon.ts). On Linux: the kernel's boot
 * id, and /proc/uptime, which counts time suspended (CLOCK_BOOTTIME) and so
 * never falls behind real time the way the monotonic clock does across a
 * suspend. Elsewhere the agent process stands in for the boot: a restart of
 * the agent then counts as one.
 */
export function bootClock(paths: BootClockPaths = LINUX): () => BootInstant {
  const boot = readTrimmed(paths.bootId);
  if (boot === undefined || boot.length === 0 || boot.length > 64 || readUptimeMs(paths.uptime) === undefined) {
    const processBoot = `process-${randomUUID()}`;
    return () => ({ boot: processBoot, ms: Math.floor(performance.now()) });
  }
  return () => ({ boot, ms: readUptimeMs(paths.uptime) ?? 0 });
}

function readTrimmed(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** `/proc/uptime` is "<seconds since boot> <idle seconds>", both with two decimals. */
function readUptimeMs(path: string): number | undefined {
  const first = readTrimmed(path)?.split(/\s+/)[0];
  const seconds = first === undefined ? NaN : Number(first);
  return Number.isFinite(seconds) && seconds >= 0 ? Math.floor(seconds * 1000) : undefined;
}
