import type { DeviceInbound, DeviceOutbound } from '../../protocol/topics.js';

export type LinkState = 'connecting' | 'online' | 'offline' | 'closed';

/** What the link tells its users. */
export interface BrokerLinkEvents {
  state: [LinkState];
  message: [DeviceInbound, Buffer];
  /**
   * MQTT 5: the broker sent a packet over the Maximum Packet Size this link
   * announced (a broker that ignores it); the connection was closed.
   */
  'packet-too-large': [string];
  /** The broker keeps refusing the credential: the agent re-enrolls. */
  'auth-failed': [];
}

/** How one message is published. */
export interface LinkPublishOptions {
  qos: 0 | 1 | 2;
  retain?: boolean;
  /** MQTT 5 only; a link on 3.1.1 is not given them (see `mqtt5`). */
  properties?: { messageExpiryInterval?: number; userProperties?: Record<string, string> };
}

/**
 * The device's port to the MQTT broker: what the session, the outbound
 * queue and the command handlers need of a connection. One adapter,
 * `DeviceLink` (mqtt-device-link.ts, over mqtt.js); code above it can be
 * given a fake broker link.
 */
export interface BrokerLink {
  readonly state: LinkState;
  /** True when the session speaks MQTT 5 (message expiry, user properties). */
  readonly mqtt5: boolean;
  /** The device's topic of that kind. */
  topic(kind: DeviceInbound | DeviceOutbound): string;
  /** Connect, and keep connecting until `close`. */
  start(): void;
  /** Publish on this connection; rejects when offline or when the connection closes before the broker acknowledges. */
  publishTo(topic: string, payload: string | Buffer | Uint8Array, options: LinkPublishOptions): Promise<void>;
  /** Subscribe to an inbound topic again: the broker then re-sends its retained message. */
  resubscribe(kind: DeviceInbound): Promise<void>;
  /** Mark the device offline on purpose (retained) and close. */
  close(): Promise<void>;
  on<E extends keyof BrokerLinkEvents>(event: E, listener: (...args: BrokerLinkEvents[E]) => void): this;
  off<E extends keyof BrokerLinkEvents>(event: E, listener: (...args: BrokerLinkEvents[E]) => void): this;
  /** Listeners on the link and its connection, for the diagnostics dump (a leak shows here). */
  listenerTotal(): number;
}
