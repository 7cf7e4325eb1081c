import * as z from 'zod/mini';
import { MESSAGE_ID_PATTERN } from '../envelope.js';
import { eventSchema } from './event-frame.js';

/** The events of the agent's other parts: message channels, watchdog, outbox, pressure, images. */

const text = z.string();
const code = z.string().check(z.minLength(1));
const count = z.int().check(z.nonnegative());
const bytes = z.number().check(z.nonnegative());
const percent = z.number();
const version = z.int().check(z.positive());
/** `broker`: from the `desired` topic; `disk`: the persisted message applied again at boot or by `reread-desired`. */
const source = z.enum(['broker', 'disk']);
const tier = z.enum(['normal', 'best-effort']);

/**
 * A fleet message (or a packet, topic `link`) refused. On `cmd`, `id` when the
 * signature verified and the id has its valid form; on `desired`, `source` and
 * never an `id` (a desired message gets no reply).
 */
export const MessageRefusedSchema = eventSchema('message-refused', {
  topic: z.enum(['cmd', 'desired', 'link']), code, message: text,
  id: z.optional(z.string().check(z.regex(MESSAGE_ID_PATTERN))), source: z.optional(source),
});
export const DesiredAcceptedSchema = eventSchema('desired-accepted', { version, source });
/** `field`: the document path at fault; `services`: the reason per service of an admission or policy refusal. */
export const DesiredRefusedSchema = eventSchema('desired-refused', {
  version, code, message: text, field: z.optional(text), services: z.optional(z.record(z.string(), text)),
});
/** The agent stops its systemd watchdog pings and is about to be restarted (docs/lifecycle.md). */
export const WatchdogStuckSchema = eventSchema('watchdog-stuck', { reason: text });
/** Messages the full offline outbox dropped, per class (`reply`, `event`, `state`, `metrics`). */
export const OutboxDroppedSchema = eventSchema('outbox-dropped', { dropped: z.record(z.string(), count) });
/** A change of the pressure state and the readings that caused it; `tier` with `restored`. */
export const PressureSchema = eventSchema('pressure', {
  change: z.enum(['entered', 'escalated', 'cleared', 'restored']), reason: text, tier: z.optional(tier),
  evicted: z.array(tier), memoryAvailableBytes: bytes, memoryTotalBytes: bytes,
  /** null when the device has no thermal zone. */
  temperatureCelsius: z.nullable(z.number()),
});
/** Image garbage collection removed an image (`image`: its first reference). */
export const ImageRemovedSchema = eventSchema('image-removed', {
  image: text, refs: z.array(text), imageId: text, lastUsedAt: z.number(), freedBytes: bytes, trigger: text,
});
/** One collection that removed something or found the disk short; `trigger`: `pull`, `update`, `disk-sample`, `no-space`, `room-for-pull`. */
export const GcSchema = eventSchema('gc', {
  trigger: text, usedPercentBefore: percent, usedPercentAfter: percent, removed: count, freedBytes: bytes, short: z.boolean(),
  highWatermarkPercent: percent, lowWatermarkPercent: percent,
});

/** Every event outside the supervisor's, in the order docs/protocol.md lists them. */
export const AGENT_EVENT_SCHEMAS = [
  MessageRefusedSchema, DesiredAcceptedSchema, DesiredRefusedSchema, WatchdogStuckSchema, OutboxDroppedSchema,
  PressureSchema, ImageRemovedSchema, GcSchema,
] as const;
