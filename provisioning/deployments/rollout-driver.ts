import type { Logger } from '../../common/logger.js';
import type { ReportedState } from '../../protocol/desired.js';
import { asTsunaguError } from '../../protocol/errors.js';
import { matchesSelector } from '../deploy/selector.js';
import type { DeviceRecord } from '../fleet-database.js';
import type { Deployment } from './deployment.js';
import type { DeploymentStore, PublishedDesired } from './deployment-store.js';
import { startRollout, supersedeRollout } from './rollout-commands.js';
import { stepRollout } from './rollout-policy.js';
import { rolloutStateFromJson, type DeviceObservation, type RolloutEvent, type RolloutState } from './rollout-state.js';
import { strategyFromJson } from './rollout-strategy.js';

export interface DriveInput {
  deployment: Deployment;
  store: DeploymentStore;
  now: number;
  /** The fleet's active devices. */
  devices: readonly DeviceRecord[];
  /** Their effective labels (reported with the fleet's over them). */
  labelsOf: ReadonlyMap<string, Readonly<Record<string, string>>>;
  reported: ReadonlyMap<string, ReportedState>;
  published: ReadonlyMap<string, PublishedDesired>;
  logger: Logger;
}

export type DriveResult =
  | { kind: 'stepped'; assignments: Map<string, number>; changed: boolean; wakeAt: number | null }
  /** Someone (an operator's verb) changed the rollout since it was read: read it again in another pass. */
  | { kind: 'raced' }
  /** The stored rollout or strategy does not read: the deployment stays where its devices are (logged). */
  | { kind: 'broken' };

/** One line of the audit log per rollout event. */
export function describeRolloutEvent(e: RolloutEvent): string {
  const { at: _at, deployment: _d, type, ...rest } = e;
  return `${type} ${JSON.stringify(rest)}`;
}

/**
 * The I/O around one step of the pure rollout policy for one deployment:
 * read its stored rollout (starting one, or superseding it when the
 * deployment has a newer revision), observe its targets, step, and store
 * the new state — only if nobody changed it meanwhile — with its events in
 * the audit log.
 */
export function driveRollout(input: DriveInput): DriveResult {
  const { deployment: d, store, now } = input;
  let previous: RolloutState | undefined;
  let seq = 0;
  let state: RolloutState;
  const events: RolloutEvent[] = [];
  try {
    const strategy = strategyFromJson(d.strategy);
    const row = store.rollout(d.name);
    if (row !== undefined) {
      previous = rolloutStateFromJson(row.state);
      seq = row.seq;
    }
    if (previous === undefined) {
      const started = startRollout({ deployment: d.name, fromRevision: d.revision > 1 ? d.revision - 1 : null, toRevision: d.revision, strategy, now });
      state = started.state;
      events.push(...started.events);
    } else if (previous.toRevision !== d.revision) {
      const superseded = supersedeRollout(previous, { toRevision: d.revision, strategy, now });
      state = superseded.state;
      events.push(...superseded.events);
    } else {
      state = previous;
    }
  } catch (err) {
    input.logger.error({ deployment: d.name, err: asTsunaguError(err).toJSON() }, 'the stored rollout does not read; its devices stay as they are');
    return { kind: 'broken' };
  }

  const targets = input.devices.filter((dev) => matchesSelector(d.selector, input.labelsOf.get(dev.deviceId) ?? {})).map((dev) => dev.deviceId);
  const publishedRevisions = store.publishedRevisions(d.name);
  const observations = new Map<string, DeviceObservation>();
  const online = new Map(input.devices.map((dev) => [dev.deviceId, dev.online]));
  for (const id of targets) {
    // Until its retained report has come (just after a restart), an online device is not judged:
    // judging it without one would read as "pending" and restart the bake it was in.
    if (!input.reported.has(id) && online.get(id) === true) continue;
    const services = input.published.get(id)?.sources.find((s) => s.deployment === d.name)?.services ?? [];
    observations.set(id, {
      online: online.get(id) ?? false,
      reported: input.reported.get(id) ?? null,
      published: publishedRevisions.get(id) ?? null,
      services: new Set(services),
    });
  }
  const step = stepRollout(state, { targets, devices: observations, now });
  events.push(...step.events);
  // A new or superseded rollout (state !== previous) is saved even if the step itself changed nothing.
  const changed = state !== previous || step.changed;
  if (changed) {
    if (!store.saveRollout(d.name, step.state, seq, now, events.map(describeRolloutEvent))) return { kind: 'raced' };
    for (const e of events) input.logger.info({ deployment: d.name, event: e }, `rollout: ${e.type}`);
  }
  return { kind: 'stepped', assignments: step.assignments, changed, wakeAt: step.wakeAt };
}
