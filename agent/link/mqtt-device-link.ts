import { EventEmitter } from 'node:events';
import mqtt, { type IClientPublishOptions, type MqttClient } from 'mqtt';
import { fullJitterDelay, type BackoffPolicy } from '../../common/backoff.js';
import type { Logger } from '../../common/logger.js';
import type { DeviceStatus } from '../../protocol/status.js';
import { deviceTopic, DEVICE_INBOUND, type DeviceInbound, type DeviceOutbound } from '../../protocol/topics.js';
import { DEVICE_SESSION_EXPIRY_SECONDS, isAuthFailure, isPacketTooLarge, mqttOptions, type BrokerEndpoint } from './mqtt-options.js';
import { totalListeners } from '../diagnostics/diagnostics.js';
import type { BrokerLink, BrokerLinkEvents, LinkState } from './broker-link.js';

export type { LinkState };

export interface DeviceLinkOptions {
  deviceId: string;
  clientId: string;
  endpoint: BrokerEndpoint;
  /**
   * Password for the next connection attempt, asked at every attempt: after
   * a credential rotation the agent tries the new password first and falls
   * back to the old one (see credentials.ts).
   */
  password?: (attempt: { authFailures: number }) => string;
  /** Told which password a successful connection used. */
  onConnectedWith?: (password: string) => void;
  logger: Logger;
  backoff?: BackoffPolicy;
  keepaliveSeconds?: number;
  /** Consecutive credential refusals after which the link reports `auth-failed` (the agent re-enrolls). */
  authFailuresBeforeGiveUp?: number;
  agentVersion: string;
  random?: () => number;
}

/** MQTT.js closes the connection itself on a packet over the Maximum Packet Size; the link only reports it. */
export type DeviceLinkEvents = BrokerLinkEvents;

export const DEFAULT_LINK_BACKOFF: BackoffPolicy = { baseMs: 1_000, capMs: 60_000, floorMs: 10_000 };

/**
 * The mqtt.js adapter of BrokerLink (broker-link.ts). The device's own MQTT
 * session: persistent (clean=false) so QoS 1 commands sent while it was
 * away are delivered when it returns; a retained status with a last will
 * that marks it offline; reconnects with capped exponential back-off and
 * full jitter, scheduled here rather than by MQTT.js (see mqtt-options.ts).
 */
export class DeviceLink extends EventEmitter<DeviceLinkEvents> implements BrokerLink {
  private client: MqttClient | undefined;
  private linkState: LinkState = 'offline';
  private attempt = 0;
  private authFailures = 0;
  /** Set at the first connection of this process: the session it finds may have lost an acknowledged desired state. */
  private subscribedInThisProcess = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(private readonly opts: DeviceLinkOptions) {
    super();
  }

  get state(): LinkState {
    return this.linkState;
  }

  /** Listeners on this link and on its MQTT client: flat over hours unless something leaks them. */
  listenerTotal(): number {
    return totalListeners(this) + totalListeners(this.client);
  }

  topic(kind: DeviceInbound | DeviceOutbound): string {
    return deviceTopic(this.opts.deviceId, kind);
  }

  start(): void {
    this.connect();
  }

  private setState(next: LinkState, detail?: Record<string, unknown>): void {
    if (next === this.linkState) return;
    const previous = this.linkState;
    this.linkState = next;
    this.opts.logger.info({ link: next, previous, ...detail }, `link ${previous} → ${next}`);
    this.emit('state', next);
  }

  private statusPayload(state: DeviceStatus['state'], reason?: string): string {
    const status: DeviceStatus = { v: 1, state, at: Date.now(), agentVersion: this.opts.agentVersion, ...(reason === undefined ? {} : { reason }) };
    return JSON.stringify(status);
  }

  private connect(): void {
    if (this.closing) return;
    this.setState('connecting');
    const password = this.opts.password?.({ authFailures: this.authFailures }) ?? this.opts.endpoint.password;
    const endpoint = { ...this.opts.endpoint, password };
    const v5 = endpoint.protocolVersion === 5;
    const client = mqtt.connect(endpoint.url, mqttOptions(endpoint, {
      clientId: this.opts.clientId,
      clean: false,
      keepalive: this.opts.keepaliveSeconds ?? 30,
      ...(v5 ? { properties: { sessionExpiryInterval: DEVICE_SESSION_EXPIRY_SECONDS } } : {}),
      will: {
        topic: this.topic('status'),
        // The will's time is the connect time; `reason` tells it apart from a clean stop.
        payload: Buffer.from(this.statusPayload('offline', 'connection lost')),
        qos: 1,
        retain: true,
      },
    }));
    this.client = client;
    // One 'close' listener per message in flight (see publishTo).
    client.setMaxListeners(0);
    client.on('connect', (connack) => {
      this.attempt = 0;
      this.authFailures = 0;
      this.opts.onConnectedWith?.(password);
      void this.onConnected(client, connack.sessionPresent);
    });
    client.on('message', (topic, payload) => {
      const kind = DEVICE_INBOUND.find((k) => this.topic(k) === topic);
      if (kind !== undefined) this.emit('message', kind, payload);
    });
    client.on('error', (err) => {
      if (isAuthFailure(err)) this.authFailures++;
      if (isPacketTooLarge(err)) this.emit('packet-too-large', err.message);
      this.opts.logger.warn({ err: err.message, code: (err as { code?: unknown }).code }, 'link error');
    });
    client.on('close', () => {
      if (this.client !== client) return;
      if (this.closing) return;
      this.setState('offline');
      if (this.authFailures >= (this.opts.authFailuresBeforeGiveUp ?? 3)) {
        this.opts.logger.error({ failures: this.authFailures }, 'the broker keeps refusing this device\'s credential');
        this.authFailures = 0;
        this.emit('auth-failed');
      }
      this.scheduleReconnect();
    });
  }

  private async onConnected(client: MqttClient, sessionPresent: boolean): Promise<void> {
    try {
      if (!sessionPresent) {
        await client.subscribeAsync(DEVICE_INBOUND.map((k) => this.topic(k)), { qos: 1 });
      } else if (!this.subscribedInThisProcess) {
        // mqtt.js acknowledges a message on receipt: a desired state the previous process received but
        // had not persisted when it died (SIGKILL, power cut) is gone from the session, and the broker
        // re-sends the retained copy only on a new subscription. Once per process; a version held is ignored.
        await client.unsubscribeAsync(this.topic('desired'));
        await client.subscribeAsync(this.topic('desired'), { qos: 1 });
      }
      this.subscribedInThisProcess = true;
      await client.publishAsync(this.topic('status'), this.statusPayload('online'), { qos: 1, retain: true });
      this.setState('online', { sessionPresent });
    } catch (err) {
      this.opts.logger.warn({ err: (err as Error).message }, 'link setup after connect failed');
      client.end(true);
    }
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer !== undefined || this.closing) return;
    const delay = fullJitterDelay(this.attempt++, this.opts.backoff ?? DEFAULT_LINK_BACKOFF, this.opts.random);
    this.opts.logger.info({ delayMs: delay, attempt: this.attempt }, 'reconnecting');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      const old = this.client;
      this.client = undefined;
      old?.removeAllListeners();
      old?.on('error', () => undefined);
      old?.end(true);
      this.connect();
    }, delay);
  }

  /** Publish now; rejects when offline (the caller decides whether to queue). */
  async publish(kind: DeviceOutbound, payload: string | Buffer, options: IClientPublishOptions = { qos: 1 }): Promise<void> {
    await this.publishTo(this.topic(kind), payload, options);
  }

  /**
   * Publish on this connection. Settles when the broker acknowledges, or
   * rejects when the connection closes first: MQTT.js would otherwise keep
   * the promise of a message in flight on a dead connection pending forever
   * (each reconnect is a new client), and its sender with it.
   */
  publishTo(topic: string, payload: string | Buffer | Uint8Array, options: IClientPublishOptions): Promise<void> {
    const client = this.client;
    if (client === undefined || this.linkState !== 'online') return Promise.reject(new Error('link offline'));
    const body = Buffer.isBuffer(payload) || typeof payload === 'string' ? payload : Buffer.from(payload);
    return new Promise<void>((resolve, reject) => {
      const onClose = (): void => reject(new Error('the connection closed before the broker acknowledged'));
      client.once('close', onClose);
      client.publish(topic, body, options, (err) => {
        client.removeListener('close', onClose);
        if (err) reject(err);
        else resolve();
      });
    });
  }

  /** True when the current session speaks MQTT 5 (message expiry, user properties). */
  get mqtt5(): boolean {
    return this.opts.endpoint.protocolVersion === 5;
  }

  /** Subscribe to an inbound topic again: the broker then re-sends its retained message. */
  async resubscribe(kind: DeviceInbound): Promise<void> {
    const client = this.client;
    if (client === undefined || this.linkState !== 'online') throw new Error('link offline');
    await client.unsubscribeAsync(this.topic(kind));
    await client.subscribeAsync(this.topic(kind), { qos: 1 });
  }

  /** Mark the device offline on purpose (retained) and close. */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    const client = this.client;
    if (client !== undefined && this.linkState === 'online') {
      // Bounded: on a connection that died unnoticed (a black hole, or a broker that closed it
      // while the agent was stalled) MQTT.js keeps a QoS 1 publish pending for good, and the
      // stop with it. publishTo gives up when the connection closes; the timer when it does not.
      await withTimeout(this.publishTo(this.topic('status'), this.statusPayload('offline', 'stopped'), { qos: 1, retain: true }), 2_000).catch(() => undefined);
      await endWithDisconnect(client, 2_000);
    } else {
      await client?.endAsync(true).catch(() => undefined);
    }
    this.setState('closed');
  }
}

/** `work`, or a rejection after `ms`; the timer does not outlive the race. */
async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * End with a DISCONNECT packet, which tells the broker not to publish the
 * will: on a forced close (socket destroyed) it would, and "connection lost"
 * would replace the "stopped" status just published. A broker that does not
 * take the DISCONNECT in time gets the socket closed under it.
 */
async function endWithDisconnect(client: MqttClient, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), timeoutMs);
  });
  const ended = client.endAsync(false).then(() => false, () => false);
  if (await Promise.race([ended, timedOut])) client.stream.destroy();
  clearTimeout(timer);
}
