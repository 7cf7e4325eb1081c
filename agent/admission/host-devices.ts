import type { DesiredState } from '../../protocol/compose/desired-service.js';
import type { AdmissionCheck, AdmissionFinding } from './admission.js';

/**
 * Every host device a service maps (`devices:`) must exist on this device: a
 * container created with a missing one fails at start, over and over, in
 * crash-loop back-off; refusing up front says why at once. `exists` is the
 * filesystem (injected: the decision stays pure).
 */
export function checkHostDevices(desired: DesiredState, exists: (path: string) => boolean): AdmissionFinding | null {
  const services: Record<string, string[]> = {};
  for (const s of desired.services) {
    const missing = s.devices.filter((d) => !exists(d.host)).map((d) => `devices: ${d.host} is not present on this device`);
    if (missing.length > 0) services[s.name] = missing;
  }
  return Object.keys(services).length === 0 ? null : { code: 'ADMISSION_REFUSED', services };
}

export function hostDevicesCheck(exists: (path: string) => boolean): AdmissionCheck {
  return { name: 'host-devices', check: (desired, context) => (context.firstTime ? checkHostDevices(desired, exists) : null) };
}
