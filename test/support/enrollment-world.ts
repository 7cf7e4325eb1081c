import mqtt, { type MqttClient } from 'mqtt';
import { silentLogger } from '../../common/logger.js';
import { enroll, type EnrollerOptions } from '../../agent/enrollment/enroller.js';
import type { EnrollGrant } from '../../protocol/enrollment.js';
import type { BootstrapFile } from '../../protocol/bootstrap.js';
import { toBase64 } from '../../protocol/bytes.js';
import { nativeEd25519 } from '../../protocol/ed25519.js';
import type { KeyPairs } from '../../protocol/keys.js';
import { BOOTSTRAP_ROLE, bootstrapRole, FLEET_ROLE, fleetRole } from '../../provisioning/broker-roles.js';
import { hashClaimToken } from '../../provisioning/claim-policy.js';
import { DynsecClient } from '../../provisioning/dynsec-client.js';
import { dynsecAccounts, EnrollmentService, type DeviceAccounts } from '../../provisioning/enrollment-service.js';
import { FleetDatabase } from '../../provisioning/fleet-database.js';
import { startMosquitto, type TestBroker } from './mosquitto.js';

const FLEET_USER = { username: 'fleet', password: 'fleet-password-0123456789' };
const BOOTSTRAP_USER = { username: 'bootstrap-acme', password: 'bootstrap-password-0123456789' };
/** The claim token the world's policy asks for. */
export const CLAIM_TOKEN = 'T0K3N';

/**
 * Enrollment in process against a real Mosquitto with the production roles: the fleet account,
 * the bootstrap account, an in-memory fleet database and the enrollment service of fleet `acme`.
 */
export interface EnrollmentWorld {
  broker: TestBroker;
  database: FleetDatabase;
  service: EnrollmentService;
  /** The bootstrap file a device of this fleet is given (MQTT 5, the claim token). */
  bootstrap: BootstrapFile;
  /** A new connection with the fleet account (an observer of the enrollment topics). */
  connectFleet(): Promise<MqttClient>;
  /** Enroll `device` (serial `serial`) with the agent's enroller, which must succeed within 30 s; `tune` sets the device's side. */
  enroll(device: KeyPairs, serial: string, tune: Pick<EnrollerOptions, 'responseTimeoutMs'> & Partial<EnrollerOptions>): Promise<EnrollGrant>;
  close(): Promise<void>;
}

/** Start an {@link EnrollmentWorld}; `accounts` may wrap the broker's account creation (a slow one, say). */
export async function startEnrollmentWorld(fleetKeys: KeyPairs, accounts: (real: DeviceAccounts) => DeviceAccounts = (real) => real): Promise<EnrollmentWorld> {
  const broker = await startMosquitto();
  const admin = await mqtt.connectAsync(broker.url, { username: broker.adminUser, password: broker.adminPassword, reconnectPeriod: 0 });
  const adminDynsec = new DynsecClient(admin);
  await adminDynsec.putRole(fleetRole());
  await adminDynsec.putClient({ ...FLEET_USER, roles: [FLEET_ROLE] });
  adminDynsec.close();
  await admin.endAsync();

  const connectFleet = (): Promise<MqttClient> => mqtt.connectAsync(broker.url, { ...FLEET_USER, reconnectPeriod: 0 });
  const fleetClient = await connectFleet();
  const dynsec = new DynsecClient(fleetClient);
  await dynsec.setDefaultAccess();
  await dynsec.putRole(bootstrapRole());
  await dynsec.putClient({ ...BOOTSTRAP_USER, roles: [BOOTSTRAP_ROLE] });
  const database = new FleetDatabase(':memory:');
  const service = new EnrollmentService({
    client: fleetClient, accounts: accounts(dynsecAccounts(dynsec)), database, ed: nativeEd25519(), logger: silentLogger(),
    fleet: { fleetId: 'acme', signPublicKey: fleetKeys.signPublicKey, signSecretKey: fleetKeys.signSecretKey, boxSecretKey: fleetKeys.boxSecretKey },
    policy: () => ({ mode: 'token', tokenSha256: hashClaimToken(CLAIM_TOKEN) }),
  });
  await service.start();
  const bootstrap: BootstrapFile = {
    v: 1, fleetId: 'acme',
    broker: { url: broker.url, ...BOOTSTRAP_USER, protocolVersion: 5 },
    fleetKeys: { signPublicKey: toBase64(fleetKeys.signPublicKey), boxPublicKey: toBase64(fleetKeys.boxPublicKey) },
    claim: { token: CLAIM_TOKEN },
  };
  return {
    broker, database, service, bootstrap, connectFleet,
    enroll: async (device, serial, tune) => {
      const controller = new AbortController();
      const deadline = setTimeout(() => controller.abort(new Error('no grant in time')), 30_000);
      try {
        return await enroll({
          bootstrap, keys: device, ed: nativeEd25519(), logger: silentLogger(), signal: controller.signal,
          claim: { serial, model: 'board', arch: 'arm64', macs: [], hostname: 'edge', claimToken: CLAIM_TOKEN },
          backoff: { baseMs: 100, capMs: 200 },
          ...tune,
        });
      } finally {
        clearTimeout(deadline);
      }
    },
    close: async () => {
      await service.stop();
      dynsec.close();
      await fleetClient.endAsync();
      database.close();
      await broker.close();
    },
  };
}
