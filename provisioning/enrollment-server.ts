import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../common/logger.js';
import { defaultEd25519 } from '../protocol/ed25519.js';
import { openBrokerBackend } from './broker-backend.js';
import { DeploymentReconciler } from './deployments/deployment-reconciler.js';
import { DeploymentStore } from './deployments/deployment-store.js';
import { FleetLink } from './fleet-link.js';
import { FleetSigner } from './fleet-signer.js';
import { EnrollmentService } from './enrollment-service.js';
import { fleetPaths, type FleetDir } from './fleet-dir.js';
import { PresenceTracker } from './presence-tracker.js';
import { FleetDatabase } from './fleet-database.js';
import { ServeChannel } from './serve-channel/serve-channel-server.js';
import { serveWork } from './serve-channel/serve-work.js';

export interface RunningEnrollmentServer {
  service: EnrollmentService;
  database: FleetDatabase;
  reconciler: DeploymentReconciler;
  stop(): Promise<void>;
}

/**
 * Compose the enrollment service for a fleet directory: the broker (Mosquitto
 * through dynamic security, or the embedded one), database, presence, and
 * the deployment reconciler (which publishes only while it holds the lease).
 */
export async function startEnrollmentServer(fleet: FleetDir, logger: Logger): Promise<RunningEnrollmentServer> {
  const database = new FleetDatabase(fleet.databasePath);
  const store = new DeploymentStore(database);
  const backend = await openBrokerBackend(fleet, logger);
  const { client } = backend;
  const service = new EnrollmentService({
    client, database, accounts: backend.accounts, logger, ed: defaultEd25519(),
    fleet: { fleetId: fleet.config.fleetId, signPublicKey: fleet.keys.signPublicKey, signSecretKey: fleet.keys.signSecretKey, boxSecretKey: fleet.keys.boxSecretKey },
    policy: () => fleet.config.claim,
  });
  const presence = new PresenceTracker(client, database, logger);
  const ed = defaultEd25519();
  const signer = new FleetSigner(fleet, ed);
  const link = new FleetLink({ client, ed, signer, deviceKey: (id) => database.byId(id)?.signPublicKey });
  const reconciler = new DeploymentReconciler({
    client, link, signer, database, store, fleetBoxSecretKey: fleet.keys.boxSecretKey, logger: logger.child({ component: 'deployments' }),
    owner: `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
  });
  presence.onDeviceChanged = (deviceId) => reconciler.deviceChanged(deviceId);
  client.on('close', () => logger.warn('lost the broker connection'));
  client.on('connect', () => logger.info('connected to the broker'));
  // The service itself is long-lived: let MQTT.js reconnect it (one process, no stampede concern).
  client.options.reconnectPeriod = 2000;
  await service.start();
  await presence.start();
  await reconciler.start();
  const channel = new ServeChannel(fleetPaths(fleet.dir).serveSocket, serveWork({
    client, link, signer, ed, fleetSignPublicKey: fleet.keys.signPublicKey, database, store, fleet,
    lastPublished: (deviceId) => store.published(deviceId)?.version,
    reported: (deviceId) => reconciler.reportedState(deviceId),
  }), logger.child({ component: 'serve-channel' }));
  await channel.start();
  return {
    service,
    database,
    reconciler,
    stop: async () => {
      await channel.stop();
      await reconciler.stop();
      presence.stop();
      await service.stop();
      await backend.close();
      database.close();
    },
  };
}
