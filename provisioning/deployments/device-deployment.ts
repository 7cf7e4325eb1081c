import type { MqttClient } from 'mqtt';
import type { PreparedDeployment } from '../deploy/compose-document.js';
import type { DesiredPublisher } from '../deploy/deploy-device.js';
import type { FleetDir } from '../fleet-dir.js';
import { PRIORITY_RANGE } from './deployment.js';
import { DEPLOYMENTS_CHANGED_TOPIC, RECONCILER_LEASE } from './deployment-reconciler.js';
import type { DeploymentStore } from './deployment-store.js';
import { DEVICE_ID_LABEL } from './desired-plan.js';
import { sealRevisionSecrets } from './revision-secrets.js';
import { DEFAULT_STRATEGY, type RolloutStrategy } from './rollout-strategy.js';

/** `deploy DEVICE` is the deployment of this name, selecting the device by its id. */
export function deviceDeploymentName(deviceId: string): string {
  return `device-${deviceId}`;
}

/**
 * One device, one wave, no bake: `deploy` follows the device itself and the
 * agent rolls a failed probation back on its own, so the rollout only holds
 * (as `deploy` always did) rather than reverting.
 */
export const DEVICE_DEPLOYMENT_STRATEGY: RolloutStrategy = {
  waves: [{ percent: 100 }], bakeMs: 0, maxFailures: { count: 0 }, onHalt: 'hold', deadlineMs: DEFAULT_STRATEGY.deadlineMs,
};

/** Whether a `serve` drives the fleet's deployments now (holds a live lease). */
export function serveIsDriving(store: DeploymentStore, now: number): boolean {
  return store.leaseHolder(RECONCILER_LEASE, now) !== undefined;
}

/**
 * `deploy DEVICE compose.yaml` expressed as a deployment: the document
 * becomes the next revision of the device's own deployment (the highest
 * priority, so it wins a service name over the fleet's layers, which it is
 * composed with), `serve` is told, and the version is the one `serve`
 * publishes. Each `deploy` is a new revision, so it is published even when
 * the document is the same, as `deploy` always did.
 */
export function publishThroughServe(args: { store: DeploymentStore; fleet: FleetDir; client: MqttClient; deviceId: string; prepared: PreparedDeployment }): DesiredPublisher {
  return async (seen) => {
    const { store, deviceId, prepared } = args;
    const name = deviceDeploymentName(deviceId);
    const now = Date.now();
    const content = { compose: prepared.compose, sealedSecrets: sealRevisionSecrets(prepared, args.fleet.keys.boxPublicKey), settings: null };
    const existing = store.get(name);
    const last = store.published(deviceId);
    const floor = Math.max(seen.desired ?? 0, last?.version ?? 0);
    if (existing === undefined) {
      store.create({ name, selector: { [DEVICE_ID_LABEL]: deviceId }, priority: PRIORITY_RANGE.max, strategy: DEVICE_DEPLOYMENT_STRATEGY }, content, now);
    } else {
      store.update(name, content, now);
    }
    await args.client.publishAsync(DEPLOYMENTS_CHANGED_TOPIC, Buffer.from('{}'), { qos: 1 });
    return seen.nextDesired(floor);
  };
}
