/**
 * The MQTT topic tree. Device ids and request ids are restricted to
 * [a-z0-9-] so that no id can carry the wildcards `+` or `#` or a `/`
 * into a topic or an ACL.
 */
export const TOPIC_ROOT = 'tsunagu';

export const DEVICE_ID_PATTERN = /^[a-z0-9][a-z0-9-]{2,63}$/;
export const REQUEST_ID_PATTERN = /^[0-9a-f]{32}$/;

/** Enrollment: the only topics the shared bootstrap credential may use. */
export const enrollTopics = {
  request: `${TOPIC_ROOT}/enroll/request`,
  /** Two service instances share the requests through this shared subscription. */
  requestShared: `$share/tsunagu-enroll/${TOPIC_ROOT}/enroll/request`,
  response: (requestId: string): string => `${TOPIC_ROOT}/enroll/response/${requestId}`,
  responseFilter: `${TOPIC_ROOT}/enroll/response/+`,
} as const;

/** What the fleet sends to one device (the device subscribes). */
export const DEVICE_INBOUND = ['cmd', 'desired'] as const;
/** What one device publishes. */
export const DEVICE_OUTBOUND = ['status', 'reply', 'state', 'inventory', 'metrics', 'events'] as const;

export type DeviceInbound = (typeof DEVICE_INBOUND)[number];
export type DeviceOutbound = (typeof DEVICE_OUTBOUND)[number];
export type DeviceTopicKind = DeviceInbound | DeviceOutbound;

export function deviceTopic(deviceId: string, kind: DeviceTopicKind): string {
  return `${TOPIC_ROOT}/devices/${deviceId}/${kind}`;
}

/** Filter matching one kind of topic across all devices (fleet side). */
export function allDevicesTopic(kind: DeviceTopicKind | '+' | '#'): string {
  return `${TOPIC_ROOT}/devices/+/${kind}`;
}

/** Split a device topic into its device id and kind, or undefined when it is not one. */
export function parseDeviceTopic(topic: string): { deviceId: string; kind: DeviceTopicKind } | undefined {
  const parts = topic.split('/');
  if (parts.length !== 4 || parts[0] !== TOPIC_ROOT || parts[1] !== 'devices') return undefined;
  const deviceId = parts[2]!;
  const kind = parts[3] as DeviceTopicKind;
  if (!DEVICE_ID_PATTERN.test(deviceId)) return undefined;
  if (!(DEVICE_INBOUND as readonly string[]).includes(kind) && !(DEVICE_OUTBOUND as readonly string[]).includes(kind)) return undefined;
  return { deviceId, kind };
}
