import * as z from 'zod/mini';
import { TRACEPARENT_PATTERN } from '../envelope.js';

/** The device's clock, Unix ms. */
const deviceTime = z.int().check(z.nonnegative());
const traceparent = z.optional(z.string().check(z.regex(TRACEPARENT_PATTERN)));

/**
 * What every message on a device's `events` topic has: plain JSON, not
 * retained. The other members depend on `type` (docs/protocol.md §9.6); a
 * receiver keeps the members it does not know and accepts types it does not
 * know, so that a newer agent can report more.
 */
export const DeviceEventSchema = z.looseObject({
  v: z.literal(1),
  at: deviceTime,
  type: z.string().check(z.minLength(1), z.maxLength(40)),
  /** The `tp` of the fleet message the event is about, when it carried one. */
  traceparent,
});
/** An event of any type, known to this side or not: only its frame is checked. */
export type DeviceEvent = z.infer<typeof DeviceEventSchema>;

/**
 * The schema of one event type: the frame with `type` fixed, then its own
 * members. Loose, like the frame: a newer agent may add members to a type.
 */
export function eventSchema<const T extends string, S extends z.core.$ZodLooseShape>(type: T, members: S) {
  return z.looseObject({ v: z.literal(1), at: deviceTime, type: z.literal(type), traceparent, ...members });
}
