import type { MqttClient } from 'mqtt';
import { fromBase64 } from '../protocol/bytes.js';
import { COMMAND_TYPE, REPLY_LIMITS, REPLY_TYPE, ReplyDataSchema, type Command, type ReplyData } from '../protocol/commands.js';
import type { Ed25519 } from '../protocol/ed25519.js';
import { decodeEnvelope, verifyEnvelope, type SignedPayload } from '../protocol/envelope.js';
import { TsunaguError } from '../protocol/errors.js';
import { checkSchema } from '../protocol/json.js';
import { keyId } from '../protocol/keys.js';
import { allDevicesTopic, deviceTopic, parseDeviceTopic, type DeviceOutbound } from '../protocol/topics.js';
import type { FleetSigner } from './fleet-signer.js';

export interface DeviceKeyLookup {
  /** The device's signing public key (base64), or undefined for an unknown device. */
  (deviceId: string): string | undefined;
}

export interface ReportMessage {
  deviceId: string;
  kind: DeviceOutbound;
  payload: Buffer;
  retained: boolean;
}

/**
 * The fleet manager's end of the channel, as a library: sign and publish
 * commands, await the device's signed reply, follow reports. One MQTT
 * client, passed in, so the caller owns connection and credentials.
 */
export class FleetLink {
  private readonly waiters = new Map<string, { deviceId: string; resolve: (r: { data: ReplyData; payload: SignedPayload }) => void }>();
  private readonly replySubscriptions = new Set<string>();

  constructor(private readonly opts: { client: MqttClient; signer: FleetSigner; ed: Ed25519; deviceKey: DeviceKeyLookup }) {
    opts.client.on('message', (topic, payload) => this.onMessage(topic, payload));
  }

  private onMessage(topic: string, payload: Buffer): void {
    const parsed = parseDeviceTopic(topic);
    if (parsed?.kind !== 'reply') return;
    try {
      const reply = this.openReply(parsed.deviceId, new Uint8Array(payload));
      const waiter = this.waiters.get(reply.data.re);
      if (waiter?.deviceId === parsed.deviceId) {
        this.waiters.delete(reply.data.re);
        waiter.resolve(reply);
      }
    } catch {
      // A reply that does not verify is not an answer; the wait goes on.
    }
  }

  /** Verify a device's signed reply with the key the fleet database holds for it. */
  openReply(deviceId: string, bytes: Uint8Array): { data: ReplyData; payload: SignedPayload } {
    const pk = this.opts.deviceKey(deviceId);
    if (pk === undefined) throw new TsunaguError('UNKNOWN_KEY', `no key on record for ${deviceId}`);
    const key = fromBase64(pk, 'device key', 32);
    const env = decodeEnvelope(bytes, REPLY_LIMITS);
    const payload = verifyEnvelope(env, (kid) => (kid === keyId(key) ? key : undefined), this.opts.ed, REPLY_LIMITS);
    if (payload.typ !== REPLY_TYPE) throw new TsunaguError('WRONG_TYPE', `expected ${REPLY_TYPE}`);
    return { data: checkSchema(ReplyDataSchema, payload.data, 'reply'), payload };
  }

  /** Publish a signed message for a device. QoS 1: delivered when it comes back if it is away. */
  async publishSigned(deviceId: string, typ: string, data: unknown, options: { lifetimeMs: number; retain?: boolean; traceparent?: string | undefined }): Promise<string> {
    const { id, bytes } = this.opts.signer.sign({ to: deviceId, typ, data, lifetimeMs: options.lifetimeMs, traceparent: options.traceparent });
    const topic = typ === COMMAND_TYPE ? deviceTopic(deviceId, 'cmd') : deviceTopic(deviceId, 'desired');
    await this.opts.client.publishAsync(topic, Buffer.from(bytes), {
      qos: 1,
      retain: options.retain ?? false,
      // MQTT 5: the broker drops a command nobody collected before it expired.
      ...(this.opts.client.options.protocolVersion === 5 && options.retain !== true ? { properties: { messageExpiryInterval: Math.ceil(options.lifetimeMs / 1000) } } : {}),
    });
    return id;
  }

  /** Send a command and wait for its reply. Rejects with TIMEOUT when none comes in time. */
  async send(deviceId: string, command: Command, options: { timeoutMs: number; lifetimeMs?: number; traceparent?: string }): Promise<{ id: string; data: ReplyData; payload: SignedPayload }> {
    const replyTopic = deviceTopic(deviceId, 'reply');
    if (!this.replySubscriptions.has(replyTopic)) {
      await this.opts.client.subscribeAsync(replyTopic, { qos: 1 });
      this.replySubscriptions.add(replyTopic);
    }
    const { id, bytes } = this.opts.signer.sign({ to: deviceId, typ: COMMAND_TYPE, data: command, lifetimeMs: options.lifetimeMs ?? Math.max(options.timeoutMs, 60_000), traceparent: options.traceparent });
    const reply = new Promise<{ data: ReplyData; payload: SignedPayload }>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(new TsunaguError('TIMEOUT', `no reply from ${deviceId} within ${options.timeoutMs} ms (the command stays queued for the device until it expires)`));
      }, options.timeoutMs);
      this.waiters.set(id, { deviceId, resolve: (r) => { clearTimeout(timer); resolve(r); } });
    });
    await this.opts.client.publishAsync(deviceTopic(deviceId, 'cmd'), Buffer.from(bytes), {
      qos: 1,
      ...(this.opts.client.options.protocolVersion === 5 ? { properties: { messageExpiryInterval: Math.ceil((options.lifetimeMs ?? Math.max(options.timeoutMs, 60_000)) / 1000) } } : {}),
    });
    return { id, ...(await reply) };
  }

  /** Follow one device's (or every device's) reports: status, inventory, metrics, state, events. */
  async watch(deviceId: string | undefined, kinds: DeviceOutbound[], onReport: (r: ReportMessage) => void): Promise<() => Promise<void>> {
    const filters = kinds.map((k) => (deviceId === undefined ? allDevicesTopic(k) : deviceTopic(deviceId, k)));
    const handler = (topic: string, payload: Buffer, packet: { retain?: boolean }): void => {
      const parsed = parseDeviceTopic(topic);
      if (parsed === undefined || !kinds.includes(parsed.kind as DeviceOutbound)) return;
      if (deviceId !== undefined && parsed.deviceId !== deviceId) return;
      onReport({ deviceId: parsed.deviceId, kind: parsed.kind as DeviceOutbound, payload, retained: packet.retain === true });
    };
    this.opts.client.on('message', handler);
    await this.opts.client.subscribeAsync(filters, { qos: 1 });
    return async () => {
      this.opts.client.removeListener('message', handler);
      await this.opts.client.unsubscribeAsync(filters);
    };
  }
}
