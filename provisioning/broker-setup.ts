import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt';
import { randomBytes } from 'node:crypto';
import { MAX_PACKET_BYTES } from '../protocol/packet-size.js';
import { BOOTSTRAP_ROLE, bootstrapRole, FLEET_ROLE, fleetRole } from './broker-roles.js';
import { DynsecClient } from './dynsec-client.js';
import type { FleetConfig } from './fleet-dir.js';

/**
 * MQTT 5: every fleet client announces MAX_PACKET_BYTES as its Maximum Packet
 * Size; the broker then never sends it a larger packet. Under MQTT 3.1.1 the
 * broker's limit on what it accepts is what protects it (docs/provisioning.md §1).
 */
export function packetSizeOptions(protocolVersion: 4 | 5): IClientOptions {
  return protocolVersion === 5 ? { properties: { maximumPacketSize: MAX_PACKET_BYTES } } : {};
}

/** Connect as the fleet's admin client. */
export async function connectFleetClient(config: FleetConfig, purpose: string): Promise<MqttClient> {
  return mqtt.connectAsync(config.broker.url, {
    username: config.broker.username,
    password: config.broker.password,
    protocolVersion: config.broker.protocolVersion,
    ...(config.broker.ca === undefined ? {} : { ca: config.broker.ca }),
    clientId: `tsunagu-${purpose}-${randomBytes(4).toString('hex')}`,
    clean: true,
    connectTimeout: 10_000,
    reconnectPeriod: 0,
    ...packetSizeOptions(config.broker.protocolVersion),
  });
}

/** Connect, keeping the CONNACK: under MQTT 5 it carries the broker's own limits. */
async function connectWithConnack(url: string, options: IClientOptions): Promise<{ client: MqttClient; connack: IConnackPacket }> {
  const client = mqtt.connect(url, options);
  const connack = await new Promise<IConnackPacket>((resolve, reject) => {
    const settle = (): void => {
      client.removeListener('connect', onConnect);
      client.removeListener('error', onError);
      client.removeListener('close', onClose);
    };
    const onConnect = (packet: IConnackPacket): void => { settle(); resolve(packet); };
    const onError = (err: Error): void => { settle(); client.end(true); reject(err); };
    const onClose = (): void => { settle(); reject(new Error(`the connection to ${url} closed before the broker answered`)); };
    client.once('connect', onConnect);
    client.once('error', onError);
    client.once('close', onClose);
  });
  return { client, connack };
}

/**
 * What the broker says of its packet size limit. Mosquitto announces its
 * `max_packet_size` as the MQTT 5 Maximum Packet Size of its CONNACK, and
 * announces nothing without one; MQTT 3.1.1 has no way to say it.
 */
export type BrokerPacketLimit = { kind: 'announced'; bytes: number } | { kind: 'none' } | { kind: 'unknown-mqtt-3' };

export function brokerPacketLimit(protocolVersion: 4 | 5, connack: IConnackPacket): BrokerPacketLimit {
  if (protocolVersion !== 5) return { kind: 'unknown-mqtt-3' };
  const bytes = connack.properties?.maximumPacketSize;
  return bytes === undefined ? { kind: 'none' } : { kind: 'announced', bytes };
}

/** What `init` tells the operator about the broker's packet size limit: a note, or a warning. */
export function packetLimitAdvice(limit: BrokerPacketLimit, minimumBytes: number): { warning: boolean; text: string } {
  const setting = `max_packet_size ${MAX_PACKET_BYTES}`;
  switch (limit.kind) {
    case 'announced':
      if (limit.bytes > MAX_PACKET_BYTES) return { warning: true, text: `the broker accepts packets of up to ${limit.bytes} bytes, more than any tsunagu message needs: set "${setting}" in mosquitto.conf (docs/provisioning.md §1)` };
      if (limit.bytes < minimumBytes) return { warning: true, text: `the broker's max_packet_size (${limit.bytes} bytes) is below the largest tsunagu message (${minimumBytes} bytes with its topic): set "${setting}" in mosquitto.conf` };
      return { warning: false, text: `the broker refuses packets over ${limit.bytes} bytes` };
    case 'none':
      return { warning: true, text: `the broker sets no packet size limit: any client it admits can make it, and the fleet, hold packets of hundreds of MB; set "${setting}" in mosquitto.conf (docs/provisioning.md §1)` };
    case 'unknown-mqtt-3':
      return { warning: false, text: `MQTT 3.1.1 cannot tell the broker's packet size limit: make sure mosquitto.conf sets "${setting}" (docs/provisioning.md §1)` };
  }
}

/**
 * One-time setup with the broker's own admin credential (the one made by
 * `mosquitto_ctrl dynsec init`): the fleet role and the fleet's service
 * client. The fleet never changes its own roles afterwards, because the
 * plugin disconnects a client whose roles change. Returns what the broker
 * said of its packet size limit, for `init` to check against the guide.
 */
export async function createFleetAccount(args: { url: string; ca?: string; protocolVersion: 4 | 5; adminUser: string; adminPassword: string; fleetUser: string; fleetPassword: string }): Promise<BrokerPacketLimit> {
  const { client, connack } = await connectWithConnack(args.url, {
    username: args.adminUser, password: args.adminPassword, protocolVersion: args.protocolVersion,
    ...(args.ca === undefined ? {} : { ca: args.ca }),
    clientId: `tsunagu-init-${randomBytes(4).toString('hex')}`, clean: true, connectTimeout: 10_000, reconnectPeriod: 0,
    ...packetSizeOptions(args.protocolVersion),
  });
  const dynsec = new DynsecClient(client);
  try {
    await dynsec.putRole(fleetRole());
    await dynsec.putClient({ username: args.fleetUser, password: args.fleetPassword, roles: [FLEET_ROLE] });
  } finally {
    dynsec.close();
    await client.endAsync();
  }
  return brokerPacketLimit(args.protocolVersion, connack);
}

/**
 * Make the broker enforce the fleet's confinement: deny by default, the
 * bootstrap role limited to the enrollment topics. Idempotent, and leaves
 * unchanged roles alone: run at every service start.
 */
export async function prepareBroker(dynsec: DynsecClient, config: FleetConfig): Promise<void> {
  await dynsec.setDefaultAccess();
  await dynsec.putRole(bootstrapRole());
  await dynsec.putClient({ username: config.bootstrap.username, password: config.bootstrap.password, roles: [BOOTSTRAP_ROLE], keepPassword: true });
}
