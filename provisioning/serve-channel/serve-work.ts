import type { MqttClient } from 'mqtt';
import type { Ed25519 } from '../../protocol/ed25519.js';
import { parseDesiredState } from '../../protocol/compose/compose-schema.js';
import { RegistryCredentialsSchema, type ReportedState } from '../../protocol/desired.js';
import { TsunaguError } from '../../protocol/errors.js';
import { deployToDevice } from '../deploy/deploy-device.js';
import { DEPLOYMENTS_CHANGED_TOPIC } from '../deployments/deployment-reconciler.js';
import type { DeploymentStore } from '../deployments/deployment-store.js';
import { publishThroughServe, serveIsDriving } from '../deployments/device-deployment.js';
import type { FleetDir } from '../fleet-dir.js';
import type { FleetDatabase } from '../fleet-database.js';
import type { FleetLink } from '../fleet-link.js';
import type { FleetSigner } from '../fleet-signer.js';
import type { ServeRequestHandler } from './serve-channel-server.js';

export interface ServeWorkDependencies {
  client: MqttClient;
  link: FleetLink;
  signer: FleetSigner;
  ed: Ed25519;
  fleetSignPublicKey: Uint8Array;
  database: FleetDatabase;
  store: DeploymentStore;
  fleet: FleetDir;
  /** The version the fleet database records as last published to the device by the reconciler. */
  lastPublished: (deviceId: string) => number | undefined;
  /** The device's last state report as `serve` holds it. */
  reported: (deviceId: string) => ReportedState | undefined;
}

/**
 * What `serve` does for the CLI: a `deploy DEVICE` handled on the
 * connection it already holds — as the device's own deployment while a
 * `serve` drives deployments (docs/deployments.md), else published directly —
 * with the versions it already knows as the
 * floor (so nothing is read from the broker first), its progress relayed line
 * by line; and a deployments change told to every `serve` of the fleet (the
 * lease holder may be another instance) on the same connection.
 */
export function serveWork(deps: ServeWorkDependencies): ServeRequestHandler {
  return async (request, reply, signal) => {
    switch (request.verb) {
      case 'deployments-changed':
        await deps.client.publishAsync(DEPLOYMENTS_CHANGED_TOPIC, Buffer.from('{}'), { qos: 1 });
        reply({ kind: 'done' });
        return;
      case 'deploy': {
        const device = deps.database.byId(request.deviceId);
        if (device?.status !== 'active') throw new TsunaguError('CONFIG', `no enrolled device "${request.deviceId}" (see: tsunagu-fleet devices)`);
        const registries = RegistryCredentialsSchema.safeParse(request.registries);
        if (!registries.success) throw new TsunaguError('SCHEMA', 'registry credentials of the request do not validate');
        // Checked again here: the socket is a boundary, and what is signed must be what the device accepts.
        const prepared = { compose: request.compose, secrets: request.secrets, registries: registries.data, state: parseDesiredState(request.compose) };
        const state = deps.reported(device.deviceId);
        const publish = serveIsDriving(deps.store, Date.now())
          ? publishThroughServe({ store: deps.store, fleet: deps.fleet, client: deps.client, deviceId: device.deviceId, prepared })
          : undefined;
        const r = await deployToDevice(
          { client: deps.client, link: deps.link, signer: deps.signer, ed: deps.ed, fleetSignPublicKey: deps.fleetSignPublicKey },
          device, prepared,
          {
            wait: request.wait, timeoutMs: request.timeoutMs, signal, ...(publish === undefined ? {} : { publish }),
            seen: { desired: deps.lastPublished(device.deviceId), desiredVersion: state?.desiredVersion, appliedVersion: state?.appliedVersion },
            observer: {
              published: (deviceId, version) => reply({ kind: 'published', deviceId, version }),
              event: (deviceId, e) => reply({ kind: 'event', deviceId, event: e.event }),
              state: (deviceId, s) => reply({ kind: 'state', deviceId, state: s }),
            },
          },
        );
        reply({ kind: 'result', ...r });
        return;
      }
    }
  };
}
