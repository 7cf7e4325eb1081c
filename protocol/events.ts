import * as z from 'zod/mini';
import { TRACEPARENT_PATTERN } from './envelope.js';

/**
 * What every message on a device's `events` topic has: plain JSON, not
 * retained. The other members depend on `type` (docs/protocol.md §9.6); a
 * receiver keeps the members it does not know and accepts types it does not
 * know, so that a newer agent can report more.
 */
export const DeviceEventSchema = z.looseObject({
  v: z.literal(1),
  /** The device's clock, Unix ms. */
  at: z.int().check(z.nonnegative()),
  type: z.string().check(z.minLength(1), z.maxLength(40)),
  /** The `tp` of the fleet message the event is about, when it carried one. */
  traceparent: z.optional(z.string().check(z.regex(TRACEPARENT_PATTERN))),
});
export type DeviceEvent = z.infer<typeof DeviceEventSchema>;
