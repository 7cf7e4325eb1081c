import type { DeviceEventBody, KnownDeviceEvent } from './device-events.js';

/**
 * The one place where the supervisor's event names meet the wire's: inside
 * the agent a service event is `pulled`, on the `events` topic it is
 * `service-pulled`. Nothing but types is imported: the agent bundle does
 * not carry the schemas.
 */
export const SERVICE_EVENT_PREFIX = 'service-';

type Flat<T> = { [K in keyof T]: T[K] };

/** A service event as the supervisor emits it: the wire's members, the name without `service-`, no frame. */
export type ServiceEvent = KnownDeviceEvent extends infer E
  ? E extends { type: `service-${infer Name}` } ? Flat<{ type: Name } & Omit<E, 'type' | 'v' | 'at' | 'traceparent'>> : never
  : never;

/** The event the fleet receives for a service event (the agent adds the frame as it sends). */
export function serviceEventOnWire(event: ServiceEvent, traceparent: string | undefined): DeviceEventBody {
  // The cast is the prefix: ServiceEvent is derived from the wire types by taking it off.
  return { ...event, type: `${SERVICE_EVENT_PREFIX}${event.type}`, ...(traceparent === undefined ? {} : { traceparent }) } as DeviceEventBody;
}
