import mqtt, { type MqttClient } from 'mqtt';
import { defaultEd25519 } from '../../protocol/ed25519.js';
import { FleetLink } from '../../provisioning/fleet-link.js';
import { FleetSigner } from '../../provisioning/fleet-signer.js';
import type { TestFleet } from './fleet.js';

/**
 * How long a test waits for the reply to `report-now`. The agent answers after re-reading the
 * machine's static facts (systeminformation: several child processes) and taking a sample; on
 * the test machine under load that read alone was seen to take 7 s (the agent's "device labels
 * read" at start), so a fixed 8 s failed replies that came a moment later. The wait ends at the
 * reply: the bound only has to be well past the slowest read.
 */
export const REPORT_NOW_REPLY_MS = 60_000;

/**
 * The fleet side of a test, through the public library: a FleetLink on the
 * fleet's own broker account, in the fleet's MQTT version (3.1.1 on the embedded broker). A persistent session (clean=false, QoS 1) so
 * that what devices publish while a test restarts the broker is queued for
 * it and not lost to the observer.
 */
export async function fleetSession(tf: TestFleet, url: string): Promise<{ client: MqttClient; link: FleetLink; signer: FleetSigner; close(): Promise<void> }> {
  const client = await mqtt.connectAsync(url, {
    username: tf.fleet.config.broker.username, password: tf.fleet.config.broker.password, protocolVersion: tf.protocolVersion,
    clientId: `fleet-test-${Math.random().toString(36).slice(2, 10)}`, clean: false,
    ...(tf.protocolVersion === 5 ? { properties: { sessionExpiryInterval: 3600 } } : {}), reconnectPeriod: 300, connectTimeout: 5000,
  });
  client.setMaxListeners(50);
  const ed = defaultEd25519();
  const signer = new FleetSigner(tf.fleet, ed);
  const link = new FleetLink({ client, ed, signer, deviceKey: (id) => tf.server?.database.byId(id)?.signPublicKey });
  return { client, link, signer, close: () => client.endAsync(true) };
}
