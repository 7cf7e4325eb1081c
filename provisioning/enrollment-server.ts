import type { Logger } from '../common/logger.js';
import { defaultEd25519 } from '../protocol/ed25519.js';
import { openBrokerBackend } from './broker-backend.js';
import { EnrollmentService } from './enrollment-service.js';
import type { FleetDir } from './fleet-dir.js';
import { PresenceTracker } from './presence-tracker.js';
import { FleetDatabase } from './fleet-database.js';

export interface RunningEnrollmentServer {
  service: EnrollmentService;
  database: FleetDatabase;
  stop(): Promise<void>;
}

/**
 * Compose the enrollment service for a fleet directory: the broker (Mosquitto
 * through dynamic security, or the embedded one), database, presence.
 */
export async function startEnrollmentServer(fleet: FleetDir, logger: Logger): Promise<RunningEnrollmentServer> {
  const database = new FleetDatabase(fleet.databasePath);
  const backend = await openBrokerBackend(fleet, logger);
  const { client } = backend;
  const service = new EnrollmentService({
    client, database, accounts: backend.accounts, logger, ed: defaultEd25519(),
    fleet: { fleetId: fleet.config.fleetId, signPublicKey: fleet.keys.signPublicKey, signSecretKey: fleet.keys.signSecretKey, boxSecretKey: fleet.keys.boxSecretKey },
    policy: () => fleet.config.claim,
  });
  const presence = new PresenceTracker(client, database, logger);
  client.on('close', () => logger.warn('lost the broker connection'));
  client.on('connect', () => logger.info('connected to the broker'));
  // The service itself is long-lived: let MQTT.js reconnect it (one process, no stampede concern).
  client.options.reconnectPeriod = 2000;
  await service.start();
  await presence.start();
  return {
    service,
    database,
    stop: async () => {
      presence.stop();
      await service.stop();
      await backend.close();
      database.close();
    },
  };
}
