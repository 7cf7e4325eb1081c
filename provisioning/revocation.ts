import type { MqttClient } from 'mqtt';
import { TsunaguError } from '../protocol/errors.js';
import { DEVICE_INBOUND, DEVICE_OUTBOUND, deviceTopic } from '../protocol/topics.js';
import { deviceRoleName } from './broker-roles.js';
import { connectFleetClient } from './broker-setup.js';
import { DynsecClient } from './dynsec-client.js';
import { AccountStore, accountFilePath } from './embedded/account-store.js';
import type { FleetDir } from './fleet-dir.js';
import type { DeviceRecord, FleetDatabase } from './fleet-database.js';

/** What one revocation did, for the operator's report and the audit record. */
export interface Revocation {
  /** The device as it was before. */
  device: DeviceRecord;
  /**
   * `broker`: the broker deleted the account and closed its connections, and
   * the device's retained messages were cleared. `account-file`: the fleet's
   * embedded broker was not running (no `serve`): its account was removed
   * from the account file, and there was no connection and no retained
   * message to clear (the embedded broker keeps them in memory only).
   */
  cutOff: 'broker' | 'account-file';
  /** The device topics on which an empty retained message was published. */
  clearedTopics: string[];
}

/** Every topic of one device, both directions: any of them may hold a retained message. */
export function deviceTopics(deviceId: string): string[] {
  return [...DEVICE_INBOUND, ...DEVICE_OUTBOUND].map((kind) => deviceTopic(deviceId, kind));
}

/**
 * Revoke one device: its key is refused from now on, its broker account is
 * deleted (which closes its live connection), and whatever it or the fleet
 * left retained on its topics is cleared. Idempotent: revoking a revoked
 * device does the broker part again, so a run cut short can be repeated.
 *
 * The fleet database goes first: from then on no enrollment service re-grants the
 * key, so a device cut off at the broker cannot come back by enrolling again.
 */
export async function revokeDevice(o: { fleet: FleetDir; database: FleetDatabase; deviceId: string; now: number }): Promise<Revocation> {
  const device = o.database.revoke(o.deviceId, o.now);
  if (device === undefined) throw new TsunaguError('CONFIG', `no device "${o.deviceId}" (see: tsunagu-fleet devices)`);
  const { config } = o.fleet;
  let client: MqttClient;
  try {
    client = await connectFleetClient(config, 'revoke');
  } catch (err) {
    if (config.broker.kind !== 'embedded' || !refused(err)) throw err;
    // No `serve`, so no embedded broker: nobody is connected, nothing is retained.
    AccountStore.open(accountFilePath(o.fleet.dir)).remove(o.deviceId);
    return { device, cutOff: 'account-file', clearedTopics: [] };
  }
  const dynsec = new DynsecClient(client);
  try {
    // The client first: Mosquitto 2.0.11 has crashed deleting a role still held by a client.
    // Deleting the client closes its connections (Mosquitto and the embedded broker alike);
    // the embedded broker has no roles of its own to delete.
    await dynsec.runChecked([
      { command: 'deleteClient', username: o.deviceId },
      ...(config.broker.kind === 'mosquitto' ? [{ command: 'deleteRole', rolename: deviceRoleName(o.deviceId) }] : []),
    ], [/not found/i]);
    // After the deletion is answered: the device can publish nothing more, so nothing it sends can land after the clearing.
    const clearedTopics = deviceTopics(o.deviceId);
    for (const topic of clearedTopics) await client.publishAsync(topic, Buffer.alloc(0), { qos: 1, retain: true });
    return { device, cutOff: 'broker', clearedTopics };
  } finally {
    dynsec.close();
    await client.endAsync();
  }
}

function refused(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code ?? ((err as { cause?: { code?: unknown } } | null)?.cause)?.code;
  return code === 'ECONNREFUSED';
}
