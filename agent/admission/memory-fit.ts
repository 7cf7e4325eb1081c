import type { DesiredState } from '../../protocol/compose/desired-service.js';
import type { AdmissionCheck, AdmissionFinding } from './admission.js';

export interface MemoryFacts {
  /** The device's physical memory. */
  totalBytes: number;
  /** Kept for the system and the agent (`memory.reserveBytes`). */
  reserveBytes: number;
}

const MIB = 1024 * 1024;
const mib = (bytes: number): string => `${Math.round(bytes / MIB)} MiB`;

/**
 * The memory limits of all services must fit in what the device has after
 * its reserve: limits are what the kernel lets each container take, so
 * limits that add up to more let the services together push the device
 * into swap or the OOM killer. Expects the device defaults applied (every
 * service has a limit). Pure. Each service is named with its share, largest
 * first, so an operator sees what to cut.
 */
export function checkMemoryFit(desired: DesiredState, facts: MemoryFacts): AdmissionFinding | null {
  const limited = desired.services.filter((s) => s.limits.memoryBytes !== null);
  const sum = limited.reduce((n, s) => n + (s.limits.memoryBytes ?? 0), 0);
  const room = Math.max(0, facts.totalBytes - facts.reserveBytes);
  if (sum <= room) return null;
  const services: Record<string, string[]> = {};
  for (const s of [...limited].sort((a, b) => (b.limits.memoryBytes ?? 0) - (a.limits.memoryBytes ?? 0))) {
    services[s.name] = [`memory limit ${mib(s.limits.memoryBytes ?? 0)}: the services' limits add up to ${mib(sum)}, more than the ${mib(room)} this device has for containers (${mib(facts.totalBytes)} minus a reserve of ${mib(facts.reserveBytes)})`];
  }
  return { code: 'ADMISSION_REFUSED', services };
}

/** The check on a desired state as the desired channel parsed it: the device defaults are in it already. */
export function memoryFitCheck(facts: MemoryFacts): AdmissionCheck {
  return { name: 'memory', check: (desired, context) => (context.firstTime ? checkMemoryFit(desired, facts) : null) };
}
