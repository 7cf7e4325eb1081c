import type { MqttClient } from 'mqtt';
import { DESIRED_LIMITS, DESIRED_TYPE } from '../../protocol/commands.js';
import type { Ed25519 } from '../../protocol/ed25519.js';
import { DesiredDataSchema, type ReportedState } from '../../protocol/desired.js';
import { decodeEnvelope, verifyEnvelope } from '../../protocol/envelope.js';
import { TsunaguError } from '../../protocol/errors.js';
import { keyId } from '../../protocol/keys.js';
import { deviceTopic } from '../../protocol/topics.js';
import type { FleetLink } from '../fleet-link.js';
import type { FleetSigner } from '../fleet-signer.js';
import { desiredDataFor, type PreparedDeployment } from './compose-document.js';
import type { ReceivedDeviceEvent } from '../../protocol/events/device-events.js';
import { judgeState, parseEvent, parseState, type RolloutOutcome } from './rollout.js';
import { chooseVersion, type VersionsSeen } from './version.js';

/**
 * Lifetime of a signed desired state: 10 years. It is retained on the broker
 * and must still verify for a device that comes back after months away; it
 * is never replayed as something else, because the device applies a version
 * only when it is above the one it holds. A newer deployment replaces it.
 */
export const DESIRED_LIFETIME_MS = 10 * 365 * 24 * 3600 * 1000;

/** How long to collect the retained `desired` and `state` after subscribing. */
const RETAINED_WINDOW_MS = 400;

export interface DeployDependencies {
  /** The client `link` publishes through. */
  client: MqttClient;
  link: FleetLink;
  signer: FleetSigner;
  ed: Ed25519;
  fleetSignPublicKey: Uint8Array;
}

export interface DeployObserver {
  published?(deviceId: string, version: number): void;
  event?(deviceId: string, event: ReceivedDeviceEvent): void;
  state?(deviceId: string, state: ReportedState): void;
}

export type DeviceResult =
  | { deviceId: string; version: number; outcome: RolloutOutcome }
  | { deviceId: string; version: number; outcome: { kind: 'published' } };

/** Read the version of a retained desired message, trusting only the fleet's own signature. */
function versionOfDesired(bytes: Buffer, deps: DeployDependencies): number | undefined {
  try {
    const kid = keyId(deps.fleetSignPublicKey);
    const payload = verifyEnvelope(decodeEnvelope(new Uint8Array(bytes), DESIRED_LIMITS), (k) => (k === kid ? deps.fleetSignPublicKey : undefined), deps.ed, DESIRED_LIMITS);
    if (payload.typ !== DESIRED_TYPE) return undefined;
    const data = DesiredDataSchema.safeParse(payload.data);
    return data.success ? data.data.version : undefined;
  } catch {
    return undefined;
  }
}

/** What a publisher knows before it publishes: the versions seen on the device's retained topics. */
export interface SeenVersions {
  /** The version of the retained desired message, when it verified with the fleet key. */
  desired: number | undefined;
  state: ReportedState | null;
  /** Resolves with the version of the next retained desired message (verified) above `floor`. */
  nextDesired(floor: number): Promise<number>;
}

/** Publishes the desired state and returns its version. */
export type DesiredPublisher = (seen: SeenVersions) => Promise<number>;

/**
 * Deploy a prepared document to one device: choose the version, seal the
 * secrets to the device, publish retained, then (unless `wait` is false)
 * follow the device's state and events until it applies or fails the version
 * or `timeoutMs` passes. Subscribes before publishing so no report is missed.
 * `options.publish` replaces the publishing step (the deployment machinery
 * of `serve` publishes instead); following stays the same.
 */
export async function deployToDevice(
  deps: DeployDependencies,
  target: { deviceId: string; boxPublicKey: string },
  prepared: PreparedDeployment,
  options: {
    wait: boolean; timeoutMs: number; observer?: DeployObserver; signal?: AbortSignal; publish?: DesiredPublisher;
    /**
     * The versions this device was last given and reported, when the caller
     * already holds them (`serve`: its database and the reports it follows):
     * the retained window below is then not waited for.
     */
    seen?: VersionsSeen;
  },
): Promise<DeviceResult> {
  const { deviceId } = target;
  let latest: ReportedState | null = null;
  let version: number | undefined;
  let retainedDesired: number | undefined;
  // The device may answer before our PUBACK arrives: an outcome found before the wait begins is kept here.
  let announced = false;
  let early: Exclude<RolloutOutcome, { kind: 'timeout' }> | undefined;
  let settle: ((o: Exclude<RolloutOutcome, { kind: 'timeout' }>) => void) | undefined;
  // The desired topic is fleet → device; FleetLink.watch follows device reports only, so read it directly.
  const desiredTopic = deviceTopic(deviceId, 'desired');
  const desiredWaiters: { floor: number; resolve: (v: number) => void }[] = [];
  const onDesired = (topic: string, payload: Buffer): void => {
    if (topic !== desiredTopic || payload.length === 0) return;
    const v = versionOfDesired(payload, deps);
    if (v === undefined) return;
    retainedDesired = v;
    for (const w of desiredWaiters.filter((x) => v > x.floor)) {
      desiredWaiters.splice(desiredWaiters.indexOf(w), 1);
      w.resolve(v);
    }
  };
  const { client } = deps;
  client.on('message', onDesired);
  const stop = await deps.link.watch(deviceId, ['state', 'events'], (r) => {
    if (r.kind === 'events') {
      const event = parseEvent(r.payload);
      if (event !== undefined && !r.retained && announced) options.observer?.event?.(deviceId, event);
      return;
    }
    const state = parseState(r.payload);
    if (state === undefined) return;
    latest = state;
    if (version === undefined) return;
    // Shown only once "published" is: a fast device can answer before our PUBACK.
    if (announced) options.observer?.state?.(deviceId, state);
    const outcome = judgeState(state, version);
    if (outcome === null) return;
    if (settle === undefined) early ??= outcome;
    else settle(outcome);
  });
  try {
    await client.subscribeAsync(desiredTopic, { qos: 1 });
    if (options.seen === undefined) await new Promise((r) => setTimeout(r, RETAINED_WINDOW_MS));
    else if (retainedDesired === undefined && options.seen.desired != null) retainedDesired = options.seen.desired;
    const seen = latest as ReportedState | null; // assigned by the watch callback
    const nextDesired = (floor: number): Promise<number> => new Promise((resolve, reject) => {
      if (retainedDesired !== undefined && retainedDesired > floor) return resolve(retainedDesired);
      const timer = setTimeout(() => reject(new TsunaguError('TIMEOUT', `serve published nothing for ${deviceId} within ${options.timeoutMs} ms (is \`tsunagu-fleet serve\` running?)`)), options.timeoutMs);
      desiredWaiters.push({ floor, resolve: (v) => { clearTimeout(timer); resolve(v); } });
    });
    const publish = options.publish ?? (async () => {
      const v = chooseVersion(deps.signer.reserveCounter(), options.seen ?? {
        desired: retainedDesired, desiredVersion: seen?.desiredVersion, appliedVersion: seen?.appliedVersion,
      });
      await deps.link.publishSigned(deviceId, DESIRED_TYPE, desiredDataFor(prepared, v, target.boxPublicKey), { lifetimeMs: DESIRED_LIFETIME_MS, retain: true });
      return v;
    });
    version = await publish({ desired: retainedDesired, state: seen, nextDesired });
    // A device may have reported on this version before its number was known here (serve published it).
    const reportedMeanwhile = latest as ReportedState | null;
    if (reportedMeanwhile !== null) early ??= judgeState(reportedMeanwhile, version) ?? undefined;
    options.observer?.published?.(deviceId, version);
    announced = true;
    await client.unsubscribeAsync(desiredTopic);
    if (!options.wait) return { deviceId, version, outcome: { kind: 'published' } };
    const v = version;
    if (early !== undefined) return { deviceId, version: v, outcome: early };
    const outcome = await new Promise<RolloutOutcome>((resolve) => {
      const timer = setTimeout(() => resolve({ kind: 'timeout', state: latest }), options.timeoutMs);
      const abort = (): void => resolve({ kind: 'timeout', state: latest });
      options.signal?.addEventListener('abort', abort, { once: true });
      settle = (o) => { clearTimeout(timer); options.signal?.removeEventListener('abort', abort); resolve(o); };
    });
    return { deviceId, version: v, outcome };
  } catch (err) {
    throw err instanceof TsunaguError ? err : new TsunaguError('INTERNAL', `deploy to ${deviceId}: ${(err as Error).message}`, undefined, { cause: err });
  } finally {
    client.removeListener('message', onDesired);
    await stop();
  }
}
