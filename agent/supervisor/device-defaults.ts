import type { DesiredService, DesiredState } from '../../protocol/compose/desired-service.js';

/** What the device's owner sets for services that leave it open (agent config, `memory.defaultLimitBytes`). */
export interface DeviceDefaults {
  /** Memory limit of a service without one; null: none. */
  memoryLimitBytes: number | null;
}

/**
 * The desired state as this device runs it: a service without a memory limit
 * gets the device's default, so that one leaking container cannot take the
 * memory the system and the agent live on. Pure; applied before hashing, so
 * the default is part of the container's config.
 */
export function withDeviceDefaults(desired: DesiredState, defaults: DeviceDefaults): DesiredState {
  if (defaults.memoryLimitBytes === null) return desired;
  const services = desired.services.map((s): DesiredService =>
    s.limits.memoryBytes !== null ? s : { ...s, limits: { ...s.limits, memoryBytes: defaults.memoryLimitBytes } });
  return { ...desired, services };
}
