import * as z from 'zod/mini';
import { AGENT_EVENT_SCHEMAS } from './agent-events.js';
import { DeviceEventSchema, type DeviceEvent } from './event-frame.js';
import { SERVICE_EVENT_SCHEMAS } from './service-events.js';

/**
 * Every event type this version of the protocol knows, told apart by `type`
 * (docs/protocol.md §9.6). The agent emits only these; a receiver reads
 * them with readDeviceEvent, which also lets through, as their frame, the
 * types a newer agent may add.
 */
export const KNOWN_EVENT_SCHEMAS = [...SERVICE_EVENT_SCHEMAS, ...AGENT_EVENT_SCHEMAS] as const;
export const KnownDeviceEventSchema = z.discriminatedUnion('type', KNOWN_EVENT_SCHEMAS);

/** The loose schemas' index signature removed: what is left are the members a type declares. */
type Declared<T> = T extends unknown ? { [K in keyof T as string extends K ? never : K]: T[K] } : never;

/** A known event as it travels, with exactly its declared members. */
export type KnownDeviceEvent = Declared<z.infer<typeof KnownDeviceEventSchema>>;
export type DeviceEventType = KnownDeviceEvent['type'];
/** The event of one type. */
export type DeviceEventOf<T extends DeviceEventType> = Extract<KnownDeviceEvent, { type: T }>;

/** What an emitter writes: an event without the frame's `v` and `at`, which the agent adds as it sends. */
export type DeviceEventBody = KnownDeviceEvent extends infer E ? E extends unknown ? Omit<E, 'v' | 'at'> : never : never;
export type DeviceEventBodyOf<T extends DeviceEventType> = Extract<DeviceEventBody, { type: T }>;

/**
 * An event as a receiver reads it: typed when this side knows its type,
 * only its frame when it does not (a newer agent's).
 */
export type ReceivedDeviceEvent =
  | { known: true; event: KnownDeviceEvent }
  | { known: false; event: DeviceEvent };

const KNOWN_TYPES: ReadonlySet<string> = new Set(KNOWN_EVENT_SCHEMAS.flatMap((s) => s.shape.type.def.values));

/**
 * Read one parsed `events` message. Undefined when it is not an event (no
 * valid frame), or when its type is known but its members do not match.
 */
export function readDeviceEvent(value: unknown): ReceivedDeviceEvent | undefined {
  const frame = z.safeParse(DeviceEventSchema, value);
  if (!frame.success) return undefined;
  if (!KNOWN_TYPES.has(frame.data.type)) return { known: false, event: frame.data };
  const known = z.safeParse(KnownDeviceEventSchema, value);
  return known.success ? { known: true, event: known.data as KnownDeviceEvent } : undefined;
}
