import type { Logger } from '../common/logger.js';
import { defaultEd25519 } from '../protocol/ed25519.js';
import { connectFleetClient, prepareBroker } from './broker-setup.js';
import { DynsecClient } from './dynsec-client.js';
import { dynsecAccounts, EnrollmentService } from './enrollment-service.js';
import type { FleetDir } from './fleet-dir.js';
import { PresenceTracker } from './presence-tracker.js';
import { Registry } from './registry.js';

export interface RunningEnrollmentServer {
  service: EnrollmentService;
  registry: Registry;
  stop(): Promise<void>;
}

/** Compose the enrollment service for a fleet directory: broker client, dynsec, registry, presence. */
export async function startEnrollmentServer(fleet: FleetDir, logger: Logger): Promise<RunningEnrollmentServer> {
  const registry = new Registry(fleet.registryPath);
  const client = await connectFleetClient(fleet.config, 'enroll');
  const dynsec = new DynsecClient(client);
  await prepareBroker(dynsec, fleet.config);
  const service = new EnrollmentService({
    client, registry, accounts: dynsecAccounts(dynsec), logger, ed: defaultEd25519(),
    fleet: { fleetId: fleet.config.fleetId, signPublicKey: fleet.keys.signPublicKey, signSecretKey: fleet.keys.signSecretKey, boxSecretKey: fleet.keys.boxSecretKey },
    policy: () => fleet.config.claim,
  });
  const presence = new PresenceTracker(client, registry, logger);
  client.on('close', () => logger.warn('lost the broker connection'));
  client.on('connect', () => logger.info('connected to the broker'));
  // The service itself is long-lived: let MQTT.js reconnect it (one process, no stampede concern).
  client.options.reconnectPeriod = 2000;
  await service.start();
  await presence.start();
  return {
    service,
    registry,
    stop: async () => {
      presence.stop();
      await service.stop();
      dynsec.close();
      await client.endAsync();
      registry.close();
    },
  };
}
