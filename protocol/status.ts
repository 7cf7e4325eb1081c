import * as z from 'zod/mini';
import type { JsonLimits } from './json.js';

/** A status message is small; anything bigger or deeper is not one. */
export const STATUS_LIMITS: JsonLimits = { maxBytes: 4096, maxDepth: 4 };

/**
 * The device's retained presence on its `status` topic, and its last will
 * on the same topic: plain JSON, not signed (only the device, or the broker
 * on its behalf, may publish there). The fleet reads `v`, `state` and `at`
 * and ignores other members, so that a newer agent may add some.
 */
export const DeviceStatusSchema = z.looseObject({
  v: z.literal(1),
  state: z.enum(['online', 'offline']),
  /** The device's clock, Unix ms; in the will, the time of the connect. */
  at: z.number(),
  agentVersion: z.optional(z.string()),
  /** On `offline`: `connection lost` (the will) or `stopped` (a clean stop). */
  reason: z.optional(z.string()),
});
export type DeviceStatus = z.infer<typeof DeviceStatusSchema>;
