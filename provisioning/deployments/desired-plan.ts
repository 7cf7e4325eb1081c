import { createHash } from 'node:crypto';
import { matchesSelector } from '../deploy/selector.js';
import type { Deployment, DeploymentRevision } from './deployment.js';
import { layerDeployments, type Layer, type LayeredState } from './layering.js';

/** One device as the reconciler sees it. */
export interface PlanDevice {
  deviceId: string;
  boxPublicKey: string;
  /** The device's reported labels with the operator's fleet labels over them. */
  labels: Readonly<Record<string, string>>;
}

export interface DevicePlan {
  layered: LayeredState;
  /** Every matching deployment with the revision this device got of it (a layer that won no service included). */
  carried: { deployment: string; revision: number }[];
  /** Changes exactly when what the device must receive changes (document, settings, the revisions it comes from, its box key when secrets are sealed). */
  hash: string;
}

/** A label every device carries implicitly, its own id: what a deployment for one device (`deploy DEVICE`) selects. */
export const DEVICE_ID_LABEL = 'tsunagu.device';

/** The labels selectors match: what the device reports, with the fleet's labels winning, and its id. */
export function effectiveLabels(deviceId: string, reported: Readonly<Record<string, string>>, fleet: Readonly<Record<string, string>> | undefined): Record<string, string> {
  return { ...reported, ...fleet, [DEVICE_ID_LABEL]: deviceId };
}

/**
 * Pure: what one device should receive. `revisionFor` says which revision of
 * a matching deployment this device runs (a rollout may hold it on an older
 * one), or undefined when the deployment gives it nothing yet.
 */
export function planDevice(
  device: PlanDevice,
  deployments: readonly Deployment[],
  revisionFor: (d: Deployment, deviceId: string) => DeploymentRevision | undefined,
): DevicePlan {
  const layers: Layer[] = [];
  const carried: DevicePlan['carried'] = [];
  const secretSources: string[] = [];
  for (const d of deployments) {
    if (!matchesSelector(d.selector, device.labels)) continue;
    const revision = revisionFor(d, device.deviceId);
    if (revision === undefined) continue;
    carried.push({ deployment: d.name, revision: revision.revision });
    layers.push({ deployment: d.name, priority: d.priority, revision: revision.revision, compose: revision.compose, settings: revision.settings });
    if (revision.sealedSecrets !== null) secretSources.push(`${d.name}@${revision.revision}`);
  }
  const layered = layerDeployments(layers);
  // The revisions are part of it: a new revision is published even when its document is the same,
  // so that a rollout has a version to judge it by (and `deploy` of the same file deploys again).
  const hash = createHash('sha256').update(JSON.stringify({
    compose: layered.compose, settings: layered.settings, revisions: carried.map((c) => `${c.deployment}@${c.revision}`).sort(), secretSources: secretSources.sort(),
    ...(secretSources.length > 0 ? { box: device.boxPublicKey } : {}),
  })).digest('hex');
  return { layered, carried, hash };
}
