import type { Logger } from '../../common/logger.js';
import type { DeviceEventOf } from '../../protocol/events/device-events.js';
import type { DeviceOutbound } from '../../protocol/topics.js';
import { systemClock, type Clock } from '../clock.js';
import type { BrokerLink, LinkPublishOptions } from './broker-link.js';
import type { DropCounts, MessageClass, Outbox } from './outbox.js';

export interface OutboundMessage {
  kind: DeviceOutbound;
  payload: Uint8Array | string;
  class: MessageClass;
  retain?: boolean;
  /** MQTT 5 only: seconds after which the broker may discard it undelivered. */
  expirySeconds?: number;
  /** MQTT 5 only: carried as a user property, so brokers and bridges can follow a rollout. */
  traceparent?: string | undefined;
}

/**
 * Everything the device sends goes through here. Online, with nothing
 * queued, a message goes straight to the broker and never touches the disk;
 * otherwise it joins the on-disk outbox, which is drained in order as soon
 * as the link is back, so order is kept across an outage.
 */
export class Outbound {
  private draining: Promise<void> | undefined;
  /** Set when a message is queued while a drain runs: that drain may already have passed its last check. */
  private queuedDuringDrain = false;

  constructor(private readonly link: BrokerLink, private readonly outbox: Outbox, private readonly logger: Logger, private readonly clock: Clock = systemClock) {
    link.on('state', (state) => {
      if (state === 'online') void this.drain();
    });
  }

  async send(message: OutboundMessage): Promise<void> {
    const topic = this.link.topic(message.kind);
    const payload = typeof message.payload === 'string' ? new Uint8Array(Buffer.from(message.payload)) : message.payload;
    const options = this.publishOptions(message);
    if (this.link.state === 'online' && this.outbox.isEmpty() && this.draining === undefined) {
      try {
        await this.link.publishTo(topic, payload, options);
        return;
      } catch (err) {
        this.logger.debug({ err: (err as Error).message, kind: message.kind }, 'direct publish failed; queueing');
      }
    }
    this.outbox.enqueue({ topic, payload, qos: 1, retain: message.retain ?? false, class: message.class });
    if (this.draining !== undefined) this.queuedDuringDrain = true;
    else if (this.link.state === 'online') void this.drain();
  }

  private publishOptions(message: OutboundMessage): LinkPublishOptions {
    const properties: NonNullable<LinkPublishOptions['properties']> = {};
    if (this.link.mqtt5) {
      if (message.expirySeconds !== undefined) properties.messageExpiryInterval = message.expirySeconds;
      if (message.traceparent !== undefined) properties.userProperties = { traceparent: message.traceparent };
    }
    return { qos: 1, retain: message.retain ?? false, ...(Object.keys(properties).length > 0 ? { properties } : {}) };
  }

  /** Deliver the backlog in order, then report what the bound forced out. */
  drain(): Promise<void> {
    // Reset in a promise reaction, never synchronously inside the first call
    // (see Outbox.drain): otherwise an empty drain would stay "running".
    this.draining ??= this.deliverBacklog().finally(() => {
      this.draining = undefined;
      if (this.queuedDuringDrain && this.link.state === 'online') void this.drain();
    });
    return this.draining;
  }

  private async deliverBacklog(): Promise<void> {
    this.queuedDuringDrain = false;
    try {
      while (!this.outbox.isEmpty() && this.link.state === 'online') {
        const sent = await this.outbox.drain((m) => this.link.publishTo(m.topic, m.payload, { qos: m.qos, retain: m.retain }));
        if (sent > 0) this.logger.info({ delivered: sent }, 'delivered queued messages');
        if (sent === 0) break;
      }
      this.reportDrops();
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'outbox delivery interrupted; resuming at the next connection');
    }
  }

  private reportDrops(): void {
    const dropped: DropCounts = this.outbox.dropped();
    const total = Object.values(dropped).reduce((a, b) => a + b, 0);
    if (total === 0 || this.link.state !== 'online') return;
    const event: DeviceEventOf<'outbox-dropped'> = { v: 1, type: 'outbox-dropped', at: this.clock.now(), dropped };
    this.link.publishTo(this.link.topic('events'), JSON.stringify(event), { qos: 1 }).then(
      () => this.outbox.acknowledgeDropped(dropped),
      () => undefined,
    );
    this.logger.warn({ dropped }, 'the offline outbox was full: oldest messages were dropped');
  }
}
