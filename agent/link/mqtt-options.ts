import type { IClientOptions } from 'mqtt';
import { MAX_PACKET_BYTES } from '../../protocol/packet-size.js';

export interface BrokerEndpoint {
  url: string;
  ca?: string | undefined;
  username: string;
  password: string;
  protocolVersion: 4 | 5;
}

/**
 * How long the broker keeps the device's MQTT 5 session (and the QoS 1
 * commands queued in it) while the device is away. Every connection with the
 * device's client id must ask for it: one that does not (session expiry 0)
 * makes the broker discard the session when it closes.
 */
export const DEVICE_SESSION_EXPIRY_SECONDS = 7 * 24 * 3600;

/**
 * Options shared by every connection the agent makes. MQTT.js's own
 * reconnect timer is off (reconnectPeriod 0): it retries at a fixed period,
 * and a fleet retrying in lockstep after a broker outage is the stampede we
 * must avoid; the link schedules reconnects itself with full jitter.
 * writeCache off: otherwise mqtt-packet pre-builds 65,536 small Buffers on
 * the first write (~7.5 MB kept for the process's life, see FOOTPRINT.md).
 *
 * MQTT 5: the connection announces MAX_PACKET_BYTES as its Maximum Packet
 * Size, so that the broker never sends a larger packet (it drops it for this
 * client) and MQTT.js closes a connection whose broker sends one anyway.
 * MQTT 3.1.1 has no such announcement: there the broker's own limit on what
 * it accepts (docs/provisioning.md §1) is what keeps large packets away.
 */
export function mqttOptions(endpoint: BrokerEndpoint, extra: IClientOptions): IClientOptions {
  const v5 = endpoint.protocolVersion === 5;
  return {
    username: endpoint.username,
    password: endpoint.password,
    protocolVersion: endpoint.protocolVersion,
    ...(endpoint.ca === undefined ? {} : { ca: endpoint.ca }),
    reconnectPeriod: 0,
    connectTimeout: 15_000,
    keepalive: 30,
    writeCache: false,
    ...extra,
    ...(v5 ? { properties: { ...extra.properties, maximumPacketSize: MAX_PACKET_BYTES } } : {}),
  };
}

/** CONNACK codes that mean "your credential is not accepted" in MQTT 3.1.1 and 5. */
export function isAuthFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 4 || code === 5 || code === 134 || code === 135;
}

/** MQTT 5 reason code 0x95 (Packet too large): MQTT.js's error for a received packet over the announced maximum. */
export function isPacketTooLarge(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 149;
}
