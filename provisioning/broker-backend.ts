import type { MqttClient } from 'mqtt';
import type { Logger } from '../common/logger.js';
import { TsunaguError } from '../protocol/errors.js';
import { MQTT_PORT } from '../protocol/mqtt-ports.js';
import { connectFleetClient, prepareBroker } from './broker-setup.js';
import { DynsecClient } from './dynsec-client.js';
import { AccountStore, accountFilePath } from './embedded/account-store.js';
import { embeddedAccounts, prepareEmbeddedAccounts } from './embedded/embedded-accounts.js';
import { startEmbeddedBroker } from './embedded/embedded-broker.js';
import { dynsecAccounts, type DeviceAccounts } from './enrollment-service.js';
import type { FleetDir } from './fleet-dir.js';

/** The broker side of a running enrollment service: its client, and where device accounts go. */
export interface BrokerBackend {
  client: MqttClient;
  accounts: DeviceAccounts;
  close(): Promise<void>;
}

/** Where the embedded broker listens: `broker.listen`, or the host and port of `broker.url`. */
export function embeddedListenAddress(fleet: FleetDir): { host: string; port: number } {
  const { listen, url } = fleet.config.broker;
  const parsed = new URL(listen === undefined ? url : `mqtt://${listen}`);
  const port = parsed.port === '' ? MQTT_PORT : Number(parsed.port);
  if (parsed.protocol !== 'mqtt:' || !Number.isInteger(port)) {
    throw new TsunaguError('CONFIG', `the embedded broker speaks plain mqtt:// only, not ${listen ?? url} (fix broker.url or broker.listen in ${fleet.dir}/fleet.json)`);
  }
  return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port };
}

/**
 * Mosquitto: connect, and install the fleet's confinement through the
 * dynamic-security plugin. Embedded: start the broker in this process
 * first, on the fleet directory's own account file.
 */
export async function openBrokerBackend(fleet: FleetDir, logger: Logger): Promise<BrokerBackend> {
  if (fleet.config.broker.kind === 'embedded') {
    const store = AccountStore.open(accountFilePath(fleet.dir));
    await prepareEmbeddedAccounts(store, fleet.config);
    const broker = await startEmbeddedBroker({ store, ...embeddedListenAddress(fleet), logger, maxPacketBytes: fleet.config.broker.maxPacketBytes });
    let client: MqttClient;
    try {
      client = await connectFleetClient(fleet.config, 'enroll');
    } catch (err) {
      await broker.close();
      throw err;
    }
    return {
      client,
      accounts: embeddedAccounts(store),
      close: async () => {
        await client.endAsync();
        await broker.close();
      },
    };
  }
  const client = await connectFleetClient(fleet.config, 'enroll');
  const dynsec = new DynsecClient(client);
  await prepareBroker(dynsec, fleet.config);
  return {
    client,
    accounts: dynsecAccounts(dynsec),
    close: async () => {
      dynsec.close();
      await client.endAsync();
    },
  };
}
