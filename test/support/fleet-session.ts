import type { MqttClient } from 'mqtt';
import { defaultEd25519 } from '../../protocol/ed25519.js';
import { FleetLink } from '../../provisioning/fleet-link.js';
import { FleetSigner } from '../../provisioning/fleet-signer.js';
import type { TestFleet } from './fleet.js';
import { connectAs } from './mqtt-probe.js';

/** The fleet side of a test, through the public library: a FleetLink on the fleet's own broker account. */
export async function fleetSession(tf: TestFleet, url: string): Promise<{ client: MqttClient; link: FleetLink; signer: FleetSigner; close(): Promise<void> }> {
  const client = await connectAs(url, tf.fleet.config.broker.username, tf.fleet.config.broker.password);
  // Survives broker restarts in tests that restart it; MQTT.js re-subscribes on reconnect.
  client.options.reconnectPeriod = 300;
  client.setMaxListeners(50);
  const ed = defaultEd25519();
  const signer = new FleetSigner(tf.fleet, ed);
  const link = new FleetLink({ client, ed, signer, deviceKey: (id) => tf.server?.registry.byId(id)?.signPublicKey });
  return { client, link, signer, close: () => client.endAsync(true) };
}
