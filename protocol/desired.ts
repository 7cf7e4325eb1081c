import * as z from 'zod';

/**
 * The desired-state message: `data` of a fleet-signed payload with
 * typ "desired", published retained (QoS 1) on the device's `desired` topic.
 *
 * - `version` rises strictly per device; a device applies a version only if
 *   it is higher than the one it holds (no replay, no downgrade).
 * - `compose` is the Compose-subset document as JSON (see
 *   agent/supervisor/compose-schema.ts), with every secret value removed.
 * - `sealed` carries the secrets, each sealed to the device's box key
 *   (protocol/seal.ts): environment values by service and variable, and the
 *   registry credentials as one sealed JSON object
 *   {"<registry host>": {"username": "...", "password": "..."}}.
 *   The broker never sees them in clear; the agent never logs them.
 */
export const DesiredDataSchema = z.object({
  version: z.number().int().positive(),
  compose: z.record(z.string(), z.unknown()),
  sealed: z.object({
    environment: z.record(z.string(), z.record(z.string(), z.string().max(8192))).optional(),
    registries: z.string().max(16 * 1024).optional(),
  }).strict().optional(),
}).strict();
export type DesiredData = z.infer<typeof DesiredDataSchema>;

export const RegistryCredentialsSchema = z.record(
  z.string().min(1).max(253),
  z.object({ username: z.string().max(256), password: z.string().max(4096) }).strict(),
);
export type RegistryCredentials = z.infer<typeof RegistryCredentialsSchema>;

/** The disk rules a device applies, as it reports them; the last collection that removed images or fell short. */
export const ReportedDiskSchema = z.object({
  reserveBytes: z.number().int().nonnegative(),
  unpackFactor: z.number().positive(),
  gc: z.object({ highWatermarkPercent: z.number(), lowWatermarkPercent: z.number() }).strict(),
  containerLogs: z.object({ maxSize: z.string().max(32), maxFiles: z.number().int().positive() }).strict(),
  lastGc: z.object({
    at: z.number().int().nonnegative(),
    trigger: z.string().max(64),
    usedPercentBefore: z.number(),
    usedPercentAfter: z.number(),
    removed: z.number().int().nonnegative(),
    freedBytes: z.number().int().nonnegative(),
    short: z.boolean(),
  }).strict().nullable(),
}).strict();
export type ReportedDisk = z.infer<typeof ReportedDiskSchema>;

/** Overall status of a device's desired state, as reported on its retained `state` topic. */
export const DeviceStatusValues = ['synced', 'applying', 'degraded', 'failed', 'refused'] as const;

/**
 * The reported state: plain JSON, retained, on the `state` topic; the
 * broker's ACLs ensure only the device publishes it. `desiredVersion` is
 * the version being worked on, `appliedVersion` the last one fully applied.
 * A refused or failed version keeps `appliedVersion` at the previous one.
 */
export const ReportedStateSchema = z.object({
  v: z.literal(1),
  at: z.number().int().nonnegative(),
  desiredVersion: z.number().int().positive().nullable(),
  appliedVersion: z.number().int().positive().nullable(),
  status: z.enum(DeviceStatusValues),
  error: z.object({
    code: z.string().regex(/^[A-Z_]{1,40}$/),
    message: z.string().max(4096),
    /** For refusals: the reason per service. */
    services: z.record(z.string(), z.string().max(1024)).optional(),
  }).strict().nullable(),
  services: z.array(z.object({
    name: z.string(),
    image: z.string(),
    imageDigest: z.string().nullable(),
    state: z.string(),
    health: z.string(),
    restartCount: z.number().int().nonnegative(),
    lastExitCode: z.number().int().nullable(),
    lastError: z.object({ code: z.string(), message: z.string() }).nullable(),
    /** Set while an update runs kill-then-download because the disk cannot hold the new image beside the old one. */
    updateSwitch: z.object({ strategy: z.literal('kill-then-download'), reason: z.string().max(1024) }).strict().nullable().optional(),
  }).passthrough()).max(256),
  /** The device's disk rules (docs/lifecycle.md) and what image garbage collection last did. */
  disk: ReportedDiskSchema.optional(),
}).strict();
export type ReportedState = z.infer<typeof ReportedStateSchema>;
