import * as z from 'zod';
import { DeviceSettingsSchema, type DeviceSettings } from '../../protocol/device-settings.js';
import { TsunaguError } from '../../protocol/errors.js';
import type { Selector } from '../deploy/selector.js';

/** Deployment names travel in topics of nothing and in CLI arguments: plain and short. */
export const DEPLOYMENT_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

export function checkDeploymentName(name: string): string {
  if (!DEPLOYMENT_NAME_PATTERN.test(name)) {
    throw new TsunaguError('CONFIG', `bad deployment name "${name}": lowercase letters, digits and -, starting with a letter or digit, at most 63`);
  }
  return name;
}

/** Lowest and highest `--priority`; a service name claimed by two deployments goes to the higher one. */
export const PRIORITY_RANGE = { min: -1000, max: 1000 } as const;

export type DeploymentState = 'active' | 'paused' | 'aborted';

/**
 * A named, persistent, versioned assignment of a workload to the devices
 * whose labels match `selector`. `revision` is the current one: each
 * `deployment update` makes a new revision and starts a rollout to it.
 */
export interface Deployment {
  name: string;
  selector: Selector;
  priority: number;
  /** The rollout strategy as stored (JSON); rollout-strategy.ts reads it. */
  strategy: unknown;
  state: DeploymentState;
  revision: number;
  createdAt: number;
  updatedAt: number;
}

/**
 * The secrets of one revision, sealed to the fleet's own box key: the
 * database never holds them in clear, and `serve` re-seals them to each
 * device's key when it publishes (a device enrolled later included).
 */
export const RevisionSecretsSchema = z.object({
  environment: z.record(z.string(), z.record(z.string(), z.string())),
  registries: z.record(z.string(), z.object({ username: z.string(), password: z.string() })),
}).strict();
export type RevisionSecrets = z.infer<typeof RevisionSecretsSchema>;

/** One immutable revision of a deployment. */
export interface DeploymentRevision {
  deployment: string;
  revision: number;
  /** The compose document as it goes on the wire (JSON, secrets taken out), validated as the device validates it. */
  compose: Record<string, unknown>;
  /** Base64 of the {@link RevisionSecrets} JSON sealed to the fleet box key; null when the document has none. */
  sealedSecrets: string | null;
  settings: DeviceSettings | null;
  createdAt: number;
}

export function parseSettings(value: unknown): DeviceSettings | null {
  if (value === null || value === undefined) return null;
  const r = DeviceSettingsSchema.safeParse(value);
  if (!r.success) throw new TsunaguError('SCHEMA', `device settings: ${r.error.issues[0]?.message ?? 'invalid'} at ${r.error.issues[0]?.path.join('.') ?? '?'}`);
  return r.data;
}
