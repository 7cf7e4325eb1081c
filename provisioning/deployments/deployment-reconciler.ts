import type { MqttClient } from 'mqtt';
import type { Logger } from '../../common/logger.js';
import { DESIRED_TYPE } from '../../protocol/commands.js';
import { DesiredDataSchema, type DesiredData, type ReportedState } from '../../protocol/desired.js';
import { asTsunaguError, TsunaguError } from '../../protocol/errors.js';
import { ENGLISH_ISSUES } from '../../protocol/json.js';
import { allDevicesTopic, parseDeviceTopic, TOPIC_ROOT } from '../../protocol/topics.js';
import { DESIRED_LIFETIME_MS } from '../deploy/deploy-device.js';
import { parseState } from '../deploy/rollout.js';
import { sealSecrets } from '../deploy/secrets.js';
import type { DeviceRecord, FleetDatabase } from '../fleet-database.js';
import type { FleetLink } from '../fleet-link.js';
import type { FleetSigner } from '../fleet-signer.js';
import type { Deployment, DeploymentRevision, RevisionSecrets } from './deployment.js';
import type { DeploymentStore, PublishedDesired } from './deployment-store.js';
import { effectiveLabels, planDevice, type DevicePlan } from './desired-plan.js';
import { checkPublication } from './missed-publication.js';
import { openRevisionSecrets, secretsForDevice } from './revision-secrets.js';
import { driveRollout } from './rollout-driver.js';

/**
 * Fleet-internal, never delivered to devices (their roles do not cover it):
 * a CLI that changed deployments or fleet labels says so here, and the
 * running `serve` reconciles at once instead of polling the database.
 */
export const DEPLOYMENTS_CHANGED_TOPIC = `${TOPIC_ROOT}/fleet/deployments-changed`;
/** Told by `serve` after a pass changed a rollout; `deployment status --watch` redraws on it. */
export const ROLLOUTS_CHANGED_TOPIC = `${TOPIC_ROOT}/fleet/rollouts-changed`;

/** The one lease every `serve` of a fleet competes for: its holder alone steps rollouts and publishes desired states. */
export const RECONCILER_LEASE = 'deployment-reconciler';
const DEFAULT_LEASE_TTL_MS = 15_000;
/** Publishing stops when less than this is left of the lease: the message must leave while we still hold it. */
const LEASE_MARGIN_MS = 5_000;
/** Publishes in flight at once: enough to keep the broker busy, few enough not to queue thousands of PUBACKs. */
const PUBLISH_BATCH = 64;

export interface ReconcilerOptions {
  client: MqttClient;
  link: FleetLink;
  signer: FleetSigner;
  database: FleetDatabase;
  store: DeploymentStore;
  fleetBoxSecretKey: Uint8Array;
  logger: Logger;
  /** Names this instance in the lease (host, pid, a random part). */
  owner: string;
  now?: () => number;
  leaseTtlMs?: number;
}

interface Holding { epoch: number; expiresAt: number }

/**
 * The loop inside `serve` that keeps every device's retained desired state
 * equal to what its matching deployments compose to, at the revision each
 * deployment's rollout gives it. It wakes on events — a device's inventory
 * (labels), presence or state report, a deployment changed by a CLI, a
 * rollout's next bake end or wave deadline, its lease to renew — and on
 * nothing else. A pass publishes a new signed desired state only to a device
 * whose composed document changed since the last one it was sent (the hash
 * kept in the database), so a restart, a second instance or a repeated event
 * costs no message. Everything it decides from is in the database or
 * retained on the broker: a restarted `serve` carries on where it was.
 */
export class DeploymentReconciler {
  private readonly now: () => number;
  private readonly ttlMs: number;
  private holding: Holding | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Each device's last retained `state` report, as the broker delivers it (again after a restart). */
  private readonly reported = new Map<string, ReportedState>();
  /** `device@version` sent again by this process: once each, so a device that cannot take it is not flooded. */
  private readonly resent = new Set<string>();

  private readonly onMessage = (topic: string, payload: Buffer): void => {
    if (topic === DEPLOYMENTS_CHANGED_TOPIC) {
      // Also said by a `serve` that just gave the lease up: an instance without it tries at once.
      if (this.holding === undefined && !this.stopped) {
        clearTimeout(this.leaseTimer);
        this.renewLease();
      }
      this.wake();
      return;
    }
    const parsed = parseDeviceTopic(topic);
    if (parsed?.kind !== 'state') return;
    const state = parseState(payload);
    if (state === undefined) this.reported.delete(parsed.deviceId);
    else this.reported.set(parsed.deviceId, state);
    this.wake();
  };

  constructor(private readonly opts: ReconcilerOptions) {
    this.now = opts.now ?? Date.now;
    this.ttlMs = opts.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  }

  async start(): Promise<void> {
    this.opts.client.on('message', this.onMessage);
    await this.opts.client.subscribeAsync([DEPLOYMENTS_CHANGED_TOPIC, allDevicesTopic('state')], { qos: 1 });
    // The broker sends the retained reports right after the subscription: most are in before the
    // first pass, and a device whose report is not in yet is only not judged in that pass.
    this.renewLease();
  }

  /** Whether this instance holds the lease now (drives rollouts and publishes). */
  get driving(): boolean {
    return this.holding !== undefined;
  }

  /** The device's last `state` report as this instance holds it (the CLI's fast path reads its versions). */
  reportedState(deviceId: string): ReportedState | undefined {
    return this.reported.get(deviceId);
  }

  /** A device's labels, presence or enrollment changed. */
  deviceChanged(_deviceId: string): void {
    this.wake();
  }

  /**
   * Run a pass soon. Every pass looks at every device: rollouts move devices
   * between revisions, so a change to one device can change what others get.
   * Wakes during a pass leave one more pass after it, never more.
   */
  wake(): void {
    if (this.stopped || this.holding === undefined) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.pass();
        } while (this.again && !this.stopped && this.holding !== undefined);
      } finally {
        this.running = undefined;
      }
    })().catch((err: unknown) => this.opts.logger.error({ err: asTsunaguError(err).toJSON() }, 'deployment reconciliation failed'));
  }

  private renewLease(): void {
    if (this.stopped) return;
    const now = this.now();
    let result: ReturnType<DeploymentStore['acquireLease']>;
    try {
      result = this.opts.store.acquireLease(RECONCILER_LEASE, this.opts.owner, now, this.ttlMs);
    } catch (err) {
      this.opts.logger.warn({ err: asTsunaguError(err).toJSON() }, 'could not renew the deployment lease; trying again');
      this.holding = undefined;
      this.leaseTimer = setTimeout(() => this.renewLease(), this.ttlMs / 3);
      return;
    }
    if (result.held) {
      const gained = this.holding === undefined || this.holding.epoch !== result.epoch;
      this.holding = { epoch: result.epoch, expiresAt: result.expiresAt };
      if (gained) {
        this.opts.logger.info({ owner: this.opts.owner, epoch: result.epoch }, 'driving the fleet\'s deployments');
        this.wake();
      }
      this.leaseTimer = setTimeout(() => this.renewLease(), this.ttlMs / 3);
    } else {
      if (this.holding !== undefined) this.opts.logger.warn({ holder: result.owner }, 'another serve drives the deployments now');
      this.holding = undefined;
      // Nothing announces the other instance's death: its lease running out is the event.
      this.leaseTimer = setTimeout(() => this.renewLease(), Math.max(result.expiresAt - now, 0) + 100);
    }
  }

  private leaseLeft(): boolean {
    return this.holding !== undefined && this.holding.expiresAt - this.now() > LEASE_MARGIN_MS;
  }

  private async pass(): Promise<void> {
    const { store, database } = this.opts;
    const now = this.now();
    const deployments = store.list();
    const fleetLabels = store.fleetLabels();
    const active = database.list().filter((d) => d.status === 'active');
    const labelsOf = new Map(active.map((d) => [d.deviceId, effectiveLabels(d.deviceId, d.labels, fleetLabels.get(d.deviceId))]));
    const published = new Map(store.allPublished().map((p) => [p.deviceId, p]));

    // Step each deployment's rollout: which revision each of its targets runs now.
    const assignments = new Map<string, Map<string, number>>();
    let wakeAt: number | null = null;
    let rolloutsChanged = false;
    for (const d of deployments) {
      const step = driveRollout({
        deployment: d, store, now, devices: active, labelsOf, reported: this.reported, published,
        logger: this.opts.logger,
      });
      if (step.kind === 'raced') {
        // An operator's verb came between our read and our write: decide again from what it wrote.
        this.again = true;
        return;
      }
      if (step.kind === 'broken') {
        // Each device keeps the revision it was last given; none is moved until the row reads again.
        assignments.set(d.name, new Map([...store.publishedRevisions(d.name)].map(([id, p]) => [id, p.revision])));
        continue;
      }
      assignments.set(d.name, step.assignments);
      if (step.changed) rolloutsChanged = true;
      if (step.wakeAt !== null && (wakeAt === null || step.wakeAt < wakeAt)) wakeAt = step.wakeAt;
    }

    const revisions = new Map<string, DeploymentRevision | undefined>();
    const revisionFor = (d: Deployment, deviceId: string): DeploymentRevision | undefined => {
      const n = assignments.get(d.name)?.get(deviceId) ?? d.revision;
      const key = `${d.name}@${n}`;
      if (!revisions.has(key)) revisions.set(key, store.revision(d.name, n));
      return revisions.get(key);
    };
    const work: { device: DeviceRecord; plan: DevicePlan; published: PublishedDesired | undefined; resend: boolean }[] = [];
    for (const device of active) {
      const plan = planDevice({ deviceId: device.deviceId, boxPublicKey: device.boxPublicKey, labels: labelsOf.get(device.deviceId)! }, deployments, revisionFor);
      const last = published.get(device.deviceId);
      // A device no deployment ever reached is left to `deploy DEVICE`.
      if (last === undefined && plan.carried.length === 0) continue;
      if (last?.hash === plan.hash) {
        // The database says it was sent; the device's reports say whether it arrived (missed-publication.ts).
        const check = checkPublication(this.reported.get(device.deviceId), last, this.now());
        if (check.kind === 'recheck' && (wakeAt === null || check.at < wakeAt)) wakeAt = check.at;
        if (check.kind === 'missed' && this.resendOnce(device.deviceId, last.version)) work.push({ device, plan, published: last, resend: true });
        continue;
      }
      work.push({ device, plan, published: last, resend: false });
    }
    const opened = new Map<string, RevisionSecrets | null>();
    const openRevision = (deployment: string, revision: number): RevisionSecrets | null => {
      const key = `${deployment}@${revision}`;
      if (!opened.has(key)) {
        const sealed = store.revision(deployment, revision)?.sealedSecrets ?? null;
        opened.set(key, sealed === null ? null : openRevisionSecrets(sealed, this.opts.fleetBoxSecretKey));
      }
      return opened.get(key) ?? null;
    };
    this.scheduleWake(wakeAt);
    for (let i = 0; i < work.length; i += PUBLISH_BATCH) {
      // What is left is published by whoever holds the lease next (its first pass looks at every device).
      if (!this.leaseLeft()) break;
      await Promise.all(work.slice(i, i + PUBLISH_BATCH).map((w) => this.publish(w.device, w.plan, w.published, openRevision, w.resend)));
    }
    // Judging needs the versions just published: one more pass, which publishes nothing new.
    if (work.some((w) => !w.resend)) this.again = true;
    if (rolloutsChanged) await this.opts.client.publishAsync(ROLLOUTS_CHANGED_TOPIC, Buffer.from('{}'), { qos: 0 }).catch(() => undefined);
  }

  private scheduleWake(at: number | null): void {
    clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    if (at === null || this.stopped) return;
    this.wakeTimer = setTimeout(() => this.wake(), Math.max(0, at - this.now()) + 10);
  }

  /** A missed publication is sent again under the same version (the agent ignores a version it holds), unrecorded, once per version in this process. */
  private resendOnce(deviceId: string, version: number): boolean {
    const key = `${deviceId}@${version}`;
    if (this.resent.has(key)) return false;
    this.resent.add(key);
    return true;
  }

  private async publish(device: DeviceRecord, plan: DevicePlan, published: PublishedDesired | undefined, openRevision: (d: string, r: number) => RevisionSecrets | null, resend: boolean): Promise<void> {
    const { deviceId } = device;
    try {
      // The agent applies only a higher version: above the signer's counter and above what this device was last sent.
      const version = resend && published !== undefined ? published.version : Math.max(this.opts.signer.reserveCounter(), (published?.version ?? 0) + 1);
      const { secrets, registries } = secretsForDevice(plan.layered.sources, openRevision);
      const sealed = sealSecrets(secrets, registries, device.boxPublicKey);
      const data: DesiredData = {
        version, compose: plan.layered.compose,
        ...(sealed === undefined ? {} : { sealed }),
        ...(plan.layered.settings === null ? {} : { settings: plan.layered.settings }),
      };
      const checked = DesiredDataSchema.safeParse(data, ENGLISH_ISSUES);
      if (!checked.success) throw new TsunaguError('TOO_LARGE', `the composed desired state does not fit the wire format: ${checked.error.issues[0]?.message ?? ''}`);
      await this.opts.link.publishSigned(deviceId, DESIRED_TYPE, checked.data, { lifetimeMs: DESIRED_LIFETIME_MS, retain: true });
      if (resend) {
        this.opts.logger.info({ deviceId, version }, 'sent a desired state again: the device reported after it without knowing it');
        return;
      }
      const recorded = this.opts.store.recordPublished(
        { deviceId, version, hash: plan.hash, sources: plan.layered.sources, conflicts: plan.layered.conflicts, publishedAt: this.now() },
        plan.carried,
        { name: RECONCILER_LEASE, owner: this.opts.owner, epoch: this.holding?.epoch ?? -1 },
      );
      this.opts.logger.info({ deviceId, version, carried: plan.carried.map((s) => `${s.deployment}@${s.revision}`), recorded }, 'published a desired state');
    } catch (err) {
      this.opts.logger.error({ deviceId, err: asTsunaguError(err).toJSON() }, 'could not publish a desired state; the next change of this device retries');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.leaseTimer);
    clearTimeout(this.wakeTimer);
    this.opts.client.removeListener('message', this.onMessage);
    await this.running;
    if (this.holding === undefined) return;
    this.opts.store.releaseLease(RECONCILER_LEASE, this.opts.owner);
    this.holding = undefined;
    // Another instance takes over now rather than when the lease would have expired.
    await this.opts.client.publishAsync(DEPLOYMENTS_CHANGED_TOPIC, Buffer.from('{}'), { qos: 1 }).catch(() => undefined);
  }
}
