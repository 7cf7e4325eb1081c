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
  }).passthrough()).max(256),
}).strict();
export type ReportedState = z.infer<typeof ReportedStateSchema>;
