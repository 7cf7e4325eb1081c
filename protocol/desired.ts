import * as z from 'zod/mini';
import { DeviceSettingsSchema } from './device-settings.js';

/**
 * The desired-state message: `data` of a fleet-signed payload with
 * typ "desired", published retained (QoS 1) on the device's `desired` topic.
 *
 * - `version` rises strictly per device; a device applies a version only if
 *   it is higher than the one it holds (no replay, no downgrade).
 * - `compose` is the Compose-subset document as JSON (see
 *   protocol/compose/compose-schema.ts), with every secret value removed.
 * - `sealed` carries the secrets, each sealed to the device's box key
 *   (protocol/seal.ts): environment values by service and variable, and the
 *   registry credentials as one sealed JSON object
 *   {"<registry host>": {"username": "...", "password": "..."}}.
 *   The broker never sees them in clear; the agent never logs them.
 * - `settings` (optional, sent only when a deployment sets some): device
 *   settings safe to set remotely (protocol/device-settings.ts); absent
 *   means the device's own configuration.
 */
export const DesiredDataSchema = z.strictObject({
  version: z.int().check(z.positive()),
  compose: z.record(z.string(), z.unknown()),
  sealed: z.optional(z.strictObject({
    environment: z.optional(z.record(z.string(), z.record(z.string(), z.string().check(z.maxLength(8192))))),
    registries: z.optional(z.string().check(z.maxLength(16 * 1024))),
  })),
  settings: z.optional(DeviceSettingsSchema),
});
export type DesiredData = z.infer<typeof DesiredDataSchema>;

export const RegistryCredentialsSchema = z.record(
  z.string().check(z.minLength(1), z.maxLength(253)),
  z.strictObject({ username: z.string().check(z.maxLength(256)), password: z.string().check(z.maxLength(4096)) }),
);
export type RegistryCredentials = z.infer<typeof RegistryCredentialsSchema>;

const count = z.int().check(z.nonnegative());

/** The disk rules a device applies, as it reports them; the last collection that removed images or fell short. */
export const ReportedDiskSchema = z.strictObject({
  reserveBytes: count,
  unpackFactor: z.number().check(z.positive()),
  gc: z.strictObject({ highWatermarkPercent: z.number(), lowWatermarkPercent: z.number() }),
  containerLogs: z.strictObject({ maxSize: z.string().check(z.maxLength(32)), maxFiles: z.int().check(z.positive()) }),
  lastGc: z.nullable(z.strictObject({
    at: count,
    trigger: z.string().check(z.maxLength(64)),
    usedPercentBefore: z.number(),
    usedPercentAfter: z.number(),
    removed: count,
    freedBytes: count,
    short: z.boolean(),
  })),
});
export type ReportedDisk = z.infer<typeof ReportedDiskSchema>;

/** Overall status of a device's desired state, as reported on its retained `state` topic. */
export const DeviceStatusValues = ['synced', 'applying', 'degraded', 'failed', 'refused'] as const;

/**
 * The reported state: plain JSON, retained, on the `state` topic; the
 * broker's ACLs ensure only the device publishes it. `desiredVersion` is
 * the version being worked on, `appliedVersion` the last one fully applied.
 * A refused or failed version keeps `appliedVersion` at the previous one.
 */
export const ReportedStateSchema = z.strictObject({
  v: z.literal(1),
  at: count,
  desiredVersion: z.nullable(z.int().check(z.positive())),
  appliedVersion: z.nullable(z.int().check(z.positive())),
  status: z.enum(DeviceStatusValues),
  error: z.nullable(z.strictObject({
    code: z.string().check(z.regex(/^[A-Z_]{1,40}$/)),
    message: z.string().check(z.maxLength(4096)),
    /** For refusals: the reason per service. */
    services: z.optional(z.record(z.string(), z.string().check(z.maxLength(1024)))),
  })),
  services: z.array(z.looseObject({
    name: z.string(),
    image: z.string(),
    imageDigest: z.nullable(z.string()),
    state: z.string(),
    health: z.string(),
    restartCount: count,
    lastExitCode: z.nullable(z.int()),
    lastError: z.nullable(z.object({ code: z.string(), message: z.string() })),
    /**
     * True while the service's container runs an older configuration than the desired one (its
     * update has not happened yet). A fleet rollout reads it to tell whether this service already
     * runs the new revision when another service of the same version failed.
     */
    outdated: z.optional(z.boolean()),
    /** Set while an update runs kill-then-download because the disk cannot hold the new image beside the old one. */
    updateSwitch: z.optional(z.nullable(z.strictObject({ strategy: z.literal('kill-then-download'), reason: z.string().check(z.maxLength(1024)) }))),
  })).check(z.maxLength(256)),
  /** The device's disk rules (docs/lifecycle.md) and what image garbage collection last did. */
  disk: z.optional(ReportedDiskSchema),
});
export type ReportedState = z.infer<typeof ReportedStateSchema>;
