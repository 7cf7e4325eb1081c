import * as z from 'zod/mini';

/**
 * Device settings a fleet deployment may set remotely, carried as the
 * optional `settings` member of the desired state (protocol/desired.ts).
 *
 * Only settings whose worst value costs a little efficiency, never the
 * device's reachability or safety, are here; each has bounds so that no
 * value can starve the device or flood the broker:
 * - `metricsIntervalMs`: how often a metrics report is sent at the latest.
 *
 * Left out on purpose (docs/deployments.md says why): the security policy
 * (the fleet must not widen what a device allows), the broker link,
 * enrollment and clock settings (a bad value could cut the device off with
 * no remote way back), memory reserve and disk rules (admission safety),
 * the probation time (the gate rollouts judge health by), the watchdog and
 * local paths. Pressure thresholds also stay local for now: they decide
 * which services get evicted, and the owner of the device sets them for its
 * hardware. The log level too: the agent's component loggers take their
 * level when they are made, so a remote change would reach only some of them.
 */
export const DeviceSettingsSchema = z.strictObject({
  metricsIntervalMs: z.optional(z.int().check(z.minimum(5_000), z.maximum(3_600_000))),
});
export type DeviceSettings = z.infer<typeof DeviceSettingsSchema>;

export const DEVICE_SETTING_NAMES = ['metricsIntervalMs'] as const satisfies readonly (keyof DeviceSettings)[];
