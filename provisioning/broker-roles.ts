import { DEVICE_INBOUND, DEVICE_OUTBOUND, deviceTopic, enrollTopics, TOPIC_ROOT } from '../protocol/topics.js';

/**
 * The broker-side confinement, as data. Mosquitto 2.0's dynamic-security
 * plugin has no %c/%u patterns, so every device gets a role of its own
 * listing its exact topics. Literal topics only: nothing here contains a
 * wildcard a device could widen.
 */
export interface AclEntry {
  acltype: 'publishClientSend' | 'publishClientReceive' | 'subscribeLiteral' | 'subscribePattern' | 'unsubscribeLiteral' | 'unsubscribePattern';
  topic: string;
  allow: boolean;
  priority?: number;
}

export interface RoleSpec {
  rolename: string;
  acls: AclEntry[];
}

export const BOOTSTRAP_ROLE = 'tsunagu-bootstrap';
export const FLEET_ROLE = 'tsunagu-fleet';

export function bootstrapRole(): RoleSpec {
  return {
    rolename: BOOTSTRAP_ROLE,
    acls: [
      { acltype: 'publishClientSend', topic: enrollTopics.request, allow: true },
      { acltype: 'subscribePattern', topic: enrollTopics.responseFilter, allow: true },
      { acltype: 'publishClientReceive', topic: enrollTopics.responseFilter, allow: true },
    ],
  };
}

export function fleetRole(): RoleSpec {
  const all = `${TOPIC_ROOT}/#`;
  return {
    rolename: FLEET_ROLE,
    acls: [
      { acltype: 'publishClientSend', topic: all, allow: true },
      { acltype: 'publishClientReceive', topic: all, allow: true },
      { acltype: 'subscribePattern', topic: all, allow: true },
      { acltype: 'subscribePattern', topic: `$share/+/${all}`, allow: true },
      // The enrollment service creates device accounts through the plugin's control topic.
      { acltype: 'publishClientSend', topic: '$CONTROL/dynamic-security/#', allow: true },
      { acltype: 'publishClientReceive', topic: '$CONTROL/dynamic-security/#', allow: true },
      { acltype: 'subscribePattern', topic: '$CONTROL/dynamic-security/#', allow: true },
    ],
  };
}

export function deviceRoleName(deviceId: string): string {
  return `tsunagu-device-${deviceId}`;
}

export function deviceRole(deviceId: string): RoleSpec {
  return {
    rolename: deviceRoleName(deviceId),
    acls: [
      ...DEVICE_OUTBOUND.map((kind): AclEntry => ({ acltype: 'publishClientSend', topic: deviceTopic(deviceId, kind), allow: true })),
      ...DEVICE_INBOUND.flatMap((kind): AclEntry[] => [
        { acltype: 'subscribeLiteral', topic: deviceTopic(deviceId, kind), allow: true },
        { acltype: 'publishClientReceive', topic: deviceTopic(deviceId, kind), allow: true },
      ]),
    ],
  };
}

/**
 * Default access for everything no role mentions. Receiving is denied by
 * default too (Mosquitto allows it by default), so a subscription that slipped
 * through would still deliver nothing.
 */
export const DEFAULT_ACL_ACCESS = [
  { acltype: 'publishClientSend', allow: false },
  { acltype: 'publishClientReceive', allow: false },
  { acltype: 'subscribe', allow: false },
  { acltype: 'unsubscribe', allow: true },
] as const;
