import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BootstrapFile } from '../../protocol/bootstrap.js';
import { silentLogger } from '../../common/logger.js';
import { bootstrapFileFor } from '../../provisioning/bootstrap-file.js';
import { createFleetAccount } from '../../provisioning/broker-setup.js';
import { hashClaimToken, type ClaimPolicy } from '../../provisioning/claim-policy.js';
import { startEnrollmentServer, type RunningEnrollmentServer } from '../../provisioning/enrollment-server.js';
import { createFleetDir, type FleetDir } from '../../provisioning/fleet-dir.js';
import { AccountStore, accountFilePath } from '../../provisioning/embedded/account-store.js';
import { prepareEmbeddedAccounts } from '../../provisioning/embedded/embedded-accounts.js';
import { freePort, type TestBroker } from './mosquitto.js';

export interface TestFleet {
  dir: string;
  /** Where clients of this fleet connect, and in which MQTT version. */
  brokerUrl: string;
  protocolVersion: 4 | 5;
  fleet: FleetDir;
  claimToken: string;
  bootstrap: BootstrapFile;
  server?: RunningEnrollmentServer;
  startServer(): Promise<RunningEnrollmentServer>;
  close(): Promise<void>;
}

/**
 * A fleet on a real broker, made through the same library calls as `tsunagu-fleet init` and
 * `bootstrap`: a Mosquitto of the test's own, or `'embedded'` for the broker that
 * `startServer()` runs in-process on a free loopback port (MQTT 3.1.1), as `serve` does.
 */
export async function createTestFleet(broker: TestBroker | 'embedded', options: { claim?: ClaimPolicy; fleetId?: string } = {}): Promise<TestFleet> {
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-fleet-'));
  const fleetId = options.fleetId ?? 'testfleet';
  const claimToken = randomBytes(12).toString('hex');
  const fleetUser = `tsunagu-fleet-${fleetId}`;
  const fleetPassword = randomBytes(16).toString('hex');
  const claim = options.claim ?? { mode: 'token', tokenSha256: hashClaimToken(claimToken) };
  let fleet: FleetDir;
  if (broker === 'embedded') {
    fleet = createFleetDir(join(dir, 'fleet'), {
      fleetId,
      broker: { url: `mqtt://127.0.0.1:${await freePort()}`, protocolVersion: 4, username: fleetUser, password: fleetPassword, kind: 'embedded' },
      claim,
    });
    await prepareEmbeddedAccounts(AccountStore.open(accountFilePath(fleet.dir)), fleet.config);
  } else {
    await createFleetAccount({ url: broker.url, protocolVersion: 5, adminUser: broker.adminUser, adminPassword: broker.adminPassword, fleetUser, fleetPassword });
    fleet = createFleetDir(join(dir, 'fleet'), {
      fleetId,
      broker: { url: broker.url, protocolVersion: 5, username: fleetUser, password: fleetPassword, kind: 'mosquitto' },
      claim,
    });
  }
  const servers: RunningEnrollmentServer[] = [];
  const tf: TestFleet = {
    dir,
    brokerUrl: fleet.config.broker.url,
    protocolVersion: fleet.config.broker.protocolVersion,
    fleet,
    claimToken,
    bootstrap: bootstrapFileFor(fleet, claimToken),
    startServer: async () => {
      const server = await startEnrollmentServer(fleet, silentLogger());
      servers.push(server);
      tf.server ??= server;
      return server;
    },
    close: async () => {
      for (const s of servers) await s.stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return tf;
}
