import type { DeviceAccounts } from '../enrollment-service.js';
import type { FleetConfig } from '../fleet-dir.js';
import type { AccountStore } from './account-store.js';

/** Device accounts on the embedded broker: the counterpart of `dynsecAccounts`. */
export function embeddedAccounts(store: AccountStore): DeviceAccounts {
  return {
    async grant(deviceId, password, clientId) {
      await store.put(deviceId, 'device', password, clientId);
    },
  };
}

/**
 * The embedded broker's counterpart of `prepareBroker`: the fleet's own
 * account and the shared bootstrap account, from the fleet config.
 * Idempotent; run at every service start.
 */
export async function prepareEmbeddedAccounts(store: AccountStore, config: FleetConfig): Promise<void> {
  await store.put(config.broker.username, 'fleet', config.broker.password);
  await store.put(config.bootstrap.username, 'bootstrap', config.bootstrap.password);
}
