import { parseDesiredState, type ParseOptions } from '../../protocol/compose/compose-schema.js';
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

/** How this device reads a desired-state document: its container log caps and its defaults. */
export interface DeviceParseOptions extends ParseOptions {
  deviceDefaults?: DeviceDefaults;
}

/**
 * A document as this device runs it: validated, normalised, the device's log
 * caps and defaults filled in. Called once, where the document crosses into
 * the agent (the desired channel); everything after takes the value. Throws
 * a TsunaguError for an invalid document.
 */
export function parseForDevice(doc: unknown, options: DeviceParseOptions = {}): DesiredState {
  const parsed = parseDesiredState(doc, options.containerLogs === undefined ? {} : { containerLogs: options.containerLogs });
  return options.deviceDefaults === undefined ? parsed : withDeviceDefaults(parsed, options.deviceDefaults);
}
