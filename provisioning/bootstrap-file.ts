import type { BootstrapFile } from '../protocol/bootstrap.js';
import { fleetPublicKeys, type FleetDir } from './fleet-dir.js';

/** The first-boot file for a batch of devices of this fleet. */
export function bootstrapFileFor(fleet: FleetDir, claimToken: string | undefined): BootstrapFile {
  const { config } = fleet;
  return {
    v: 1,
    fleetId: config.fleetId,
    broker: {
      url: config.broker.deviceUrl ?? config.broker.url,
      ...(config.broker.ca === undefined ? {} : { ca: config.broker.ca }),
      username: config.bootstrap.username,
      password: config.bootstrap.password,
      protocolVersion: config.broker.protocolVersion,
    },
    fleetKeys: fleetPublicKeys(fleet),
    claim: claimToken === undefined ? {} : { token: claimToken },
  };
}
