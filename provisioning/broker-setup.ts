import mqtt, { type MqttClient } from 'mqtt';
import { randomBytes } from 'node:crypto';
import { BOOTSTRAP_ROLE, bootstrapRole, FLEET_ROLE, fleetRole } from './broker-roles.js';
import { DynsecClient } from './dynsec-client.js';
import type { FleetConfig } from './fleet-dir.js';

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
  });
}

/**
 * One-time setup with the broker's own admin credential (the one made by
 * `mosquitto_ctrl dynsec init`): the fleet role and the fleet's service
 * client. The fleet never changes its own roles afterwards, because the
 * plugin disconnects a client whose roles change.
 */
export async function createFleetAccount(args: { url: string; ca?: string; protocolVersion: 4 | 5; adminUser: string; adminPassword: string; fleetUser: string; fleetPassword: string }): Promise<void> {
  const client = await mqtt.connectAsync(args.url, {
    username: args.adminUser, password: args.adminPassword, protocolVersion: args.protocolVersion,
    ...(args.ca === undefined ? {} : { ca: args.ca }),
    clientId: `tsunagu-init-${randomBytes(4).toString('hex')}`, clean: true, connectTimeout: 10_000, reconnectPeriod: 0,
  });
  const dynsec = new DynsecClient(client);
  try {
    await dynsec.putRole(fleetRole());
    await dynsec.putClient({ username: args.fleetUser, password: args.fleetPassword, roles: [FLEET_ROLE] });
  } finally {
    dynsec.close();
    await client.endAsync();
  }
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
