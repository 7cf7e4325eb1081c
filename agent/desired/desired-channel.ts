import type { Logger } from '../../common/logger.js';
import type { DeviceSettings } from '../../protocol/device-settings.js';
import { DesiredDataSchema, type DesiredData, type RegistryCredentials, type ReportedDisk, type ReportedState } from '../../protocol/desired.js';
import type { SignedPayload } from '../../protocol/envelope.js';
import { asTsunaguError, type TsunaguError } from '../../protocol/errors.js';
import type { DeviceEventBody } from '../../protocol/events/device-events.js';
import { checkSchema } from '../../protocol/json.js';
import { DESIRED_LIMITS, DESIRED_TYPE } from '../../protocol/commands.js';
import type { FleetVerifier } from '../commands/fleet-verifier.js';
import { admit, type AdmissionCheck } from '../admission/admission.js';
import { systemClock, type Clock } from '../clock.js';
import { parseDesiredState, type ParseOptions } from '../../protocol/compose/compose-schema.js';
import { type DesiredState } from '../../protocol/compose/desired-service.js';
import type { SupervisorState } from '../supervisor/supervisor.js';
import type { DesiredStore } from './desired-store.js';
import { reportedState, type Refusal } from './state-report.js';
import { unsealDesired } from './unseal.js';

/** The supervisor, as the desired channel drives it. */
export interface DesiredTarget {
  apply(doc: object, version: string): Promise<SupervisorState>;
  state(): SupervisorState;
  /** The last proven version, kept across a restart: what a rollback returns to. */
  restoreProven?(doc: object, version: string): void;
}

export interface DesiredChannelOptions {
  /** Fleet signature, message type and addressee: the verifier the command channel uses too. */
  verifier: Pick<FleetVerifier, 'verifyAddressed'>;
  /** The device's box secret key, to open `sealed`. */
  boxSecretKey: Uint8Array;
  store: DesiredStore;
  supervisor: DesiredTarget;
  /** Labels this device carries, as the supervisor matches them against `x-tsunagu.requires`. */
  deviceLabels: ReadonlySet<string>;
  /** The registry credentials of the accepted version, for the supervisor's `registryAuth` hook. */
  setRegistries: (registries: RegistryCredentials) => void;
  /** The fleet's device settings of the accepted version; undefined: the device's own configuration again. */
  applySettings?: (settings: DeviceSettings | undefined) => void;
  /**
   * Rules a desired state must pass before it is accepted (device security
   * policy, fit): a refusal keeps what runs and reports a reason per service.
   */
  admission?: readonly AdmissionCheck[];
  /** As the supervisor parses (the device's log caps), so that admission sees what will run. */
  parseOptions?: ParseOptions;
  /** The device's disk rules and last image collection, for the retained state. */
  disk?: () => ReportedDisk | undefined;
  /** The retained `state` message. */
  publishState: (state: ReportedState, traceparent: string | undefined) => void;
  emitEvent: (event: DeviceEventBody) => void;
  /**
   * The persisted message failed its signature or its schema (it has been moved aside):
   * the broker's retained copy is the only one left, so the caller fetches it again.
   */
  onPersistedUnusable?: () => void;
  logger: Logger;
  clock?: Clock;
}

type Source = 'broker' | 'disk';

interface Accepted {
  version: number;
  /** The signed bytes, sealed: kept as `proven.msg` once the version passes its probations. */
  bytes: Uint8Array;
  traceparent: string | undefined;
  desired: DesiredState;
}

/**
 * The device end of the desired state: verify a message, keep versions
 * rising (a redelivery of the version held is ignored, an older one
 * refused), open the secrets, persist the signed bytes, hand the document to
 * the supervisor, and turn the supervisor's snapshots into the retained
 * `state` message. Deliveries are handled one at a time, in arrival order.
 */
export class DesiredChannel {
  private readonly clock: Clock;
  private queue: Promise<void> = Promise.resolve();
  private accepted: Accepted | undefined;
  private applied: number | null = null;
  private refusal: Refusal | undefined;

  constructor(private readonly opts: DesiredChannelOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  /** The traceparent of the desired state being applied, for events and log lines. */
  get traceparent(): string | undefined {
    return this.accepted?.traceparent;
  }

  get acceptedVersion(): number | null {
    return this.accepted?.version ?? null;
  }

  /** A message on the device's `desired` topic. */
  deliver(bytes: Uint8Array): Promise<void> {
    return this.enqueue(() => this.handle(bytes, 'broker'));
  }

  /**
   * Apply the persisted desired state again (at boot, and for `reread-desired`):
   * re-verified first, so that nothing on disk is trusted blindly. Resolves
   * with the version applied, or null when there is none.
   */
  restore(): Promise<number | null> {
    let version: number | null = null;
    return this.enqueue(async () => {
      this.restoreProven();
      const bytes = this.opts.store.loadMessage();
      if (bytes === undefined) return;
      if (await this.handle(bytes, 'disk')) version = this.accepted?.version ?? null;
    }).then(() => version);
  }

  /**
   * The supervisor says a version passed its probations: its signed message
   * is kept, so that after a restart a rollback still returns to it.
   */
  onProven(version: string): void {
    const accepted = this.accepted;
    if (accepted === undefined || String(accepted.version) !== version) return;
    try {
      this.opts.store.saveProven(accepted.bytes);
    } catch (err) {
      this.opts.logger.warn({ err: asTsunaguError(err).toJSON() }, 'could not keep the proven version; it is tried again when the next one passes');
    }
  }

  /** Hand the kept proven version to the supervisor, verified and opened as any desired state. */
  private restoreProven(): void {
    const target = this.opts.supervisor;
    const bytes = this.opts.store.loadProven();
    if (bytes === undefined || target.restoreProven === undefined) return;
    try {
      const payload = this.verify(bytes);
      const data = checkSchema(DesiredDataSchema, payload.data, 'desired');
      target.restoreProven(unsealDesired(data, this.opts.boxSecretKey).compose, String(data.version));
      // It reached `synced` before the restart: what runs is reported as applied from it, not from nothing.
      this.applied ??= data.version;
    } catch (err) {
      const e = asTsunaguError(err, 'MALFORMED');
      this.opts.store.moveProvenAside(`${e.code}: ${e.message}`);
    }
  }

  /** Map a supervisor snapshot to the retained state message. */
  onSupervisorState(state: SupervisorState): void {
    const accepted = this.accepted;
    if (accepted !== undefined && state.status === 'synced' && state.version === String(accepted.version)) this.applied = accepted.version;
    this.publish(state);
  }

  /** Publish the state again: something besides the supervisor's snapshot changed (an image collection). */
  republish(): void {
    if (this.accepted !== undefined || this.refusal !== undefined) this.publish(this.opts.supervisor.state());
  }

  private verify(bytes: Uint8Array): SignedPayload {
    return this.opts.verifier.verifyAddressed(bytes, DESIRED_TYPE, DESIRED_LIMITS);
  }

  private enqueue(work: () => Promise<unknown>): Promise<void> {
    const run = this.queue.then(work);
    this.queue = run.then(() => undefined, (err: unknown) => {
      this.opts.logger.error({ err: asTsunaguError(err).toJSON() }, 'desired state handling failed');
    });
    return this.queue;
  }

  /** True when the message was accepted and handed to the supervisor. */
  private async handle(bytes: Uint8Array, source: Source): Promise<boolean> {
    const { logger } = this.opts;
    let payload: SignedPayload;
    let data: DesiredData;
    try {
      payload = this.verify(bytes);
      data = checkSchema(DesiredDataSchema, payload.data, 'desired');
    } catch (err) {
      const e = asTsunaguError(err, 'MALFORMED');
      logger.warn({ code: e.code, source }, `refused a desired-state message: ${e.message}`);
      this.opts.emitEvent({ type: 'message-refused', topic: 'desired', source, code: e.code, message: e.message });
      if (source === 'disk') {
        this.opts.store.moveMessageAside(`${e.code}: ${e.message}`);
        this.opts.onPersistedUnusable?.();
      }
      return false;
    }
    const tp = payload.tp;
    const log = logger.child({ desiredVersion: data.version, ...(tp === undefined ? {} : { traceparent: tp }) });
    const held = this.accepted?.version;
    if (source === 'broker' && held !== undefined && data.version <= held) {
      if (data.version === held) {
        // A retained redelivery (reconnect, resubscribe, agent restart): nothing to do.
        log.debug('desired state redelivered with the version held; ignored');
        return false;
      }
      const message = `version ${data.version} is older than version ${held}, which this device holds`;
      log.warn({ code: 'OLD_VERSION', held }, `refused desired state: ${message}`);
      this.opts.emitEvent({ type: 'desired-refused', version: data.version, code: 'OLD_VERSION', message, ...(tp === undefined ? {} : { traceparent: tp }) });
      return false;
    }

    let desired: DesiredState;
    let compose: Record<string, unknown>;
    let registries: RegistryCredentials;
    try {
      ({ compose, registries } = unsealDesired(data, this.opts.boxSecretKey));
      desired = parseDesiredState(compose, this.opts.parseOptions);
    } catch (err) {
      const e = asTsunaguError(err, 'SCHEMA');
      const field = typeof e.details?.field === 'string' ? e.details.field : undefined;
      this.refuse(data.version, source, e, serviceReasons(field, e.message), tp, field);
      return false;
    }
    try {
      // A persisted message was admitted when it arrived; from disk only the device's own guards run again.
      await admit(desired, this.opts.admission ?? [], { firstTime: source === 'broker' });
    } catch (err) {
      const e = asTsunaguError(err);
      const services = e.details?.services;
      this.refuse(data.version, source, e, typeof services === 'object' && services !== null ? { services: services as Record<string, string> } : {}, tp);
      return false;
    }

    if (source === 'broker') this.opts.store.saveMessage(bytes);
    const isNew = this.accepted?.version !== data.version;
    this.accepted = { version: data.version, bytes, traceparent: tp, desired };
    this.refusal = undefined;
    this.opts.setRegistries(registries);
    this.opts.applySettings?.(data.settings);
    log.info({ source, services: desired.services.map((s) => s.name) }, isNew ? 'applying desired state' : 'applying the desired state held again');
    this.opts.emitEvent({ type: 'desired-accepted', version: data.version, source, ...(tp === undefined ? {} : { traceparent: tp }) });
    try {
      await this.opts.supervisor.apply(compose, String(data.version));
    } catch (err) {
      const e = asTsunaguError(err);
      log.error({ err: e.toJSON() }, 'applying the desired state failed');
    }
    return true;
  }

  private refuse(version: number, source: Source, e: TsunaguError, reasons: { services?: Record<string, string> }, tp: string | undefined, field?: string): void {
    const log = this.opts.logger.child({ desiredVersion: version, ...(tp === undefined ? {} : { traceparent: tp }) });
    log.warn({ code: e.code, field, source, services: reasons.services }, `refused desired state: ${e.message}`);
    this.opts.emitEvent({
      type: 'desired-refused', version, code: e.code, message: e.message,
      ...(field === undefined ? {} : { field }), ...reasons, ...(tp === undefined ? {} : { traceparent: tp }),
    });
    // A stored version refused at boot (a policy tightened since) is reported too: the fleet must see why nothing runs.
    if (source === 'broker' || this.accepted === undefined) {
      this.refusal = { version, code: e.code, message: e.message, ...reasons };
      this.publish(this.opts.supervisor.state());
    }
  }

  private diskReport(): { disk?: ReportedDisk } {
    const disk = this.opts.disk?.();
    return disk === undefined ? {} : { disk };
  }

  private publish(state: SupervisorState): void {
    const accepted = this.accepted;
    const missingLabels: Record<string, string[]> = {};
    for (const s of accepted?.desired.services ?? []) {
      const missing = s.tsunagu.requires.filter((l) => !this.opts.deviceLabels.has(l));
      if (missing.length > 0) missingLabels[s.name] = missing;
    }
    const report = reportedState({
      supervisor: state, acceptedVersion: accepted?.version ?? null, appliedVersion: this.applied,
      refusal: this.refusal, missingLabels, at: this.clock.now(), ...this.diskReport(),
    });
    this.opts.publishState(report, this.refusal === undefined ? accepted?.traceparent : undefined);
  }
}

/** `services.web.build` names the service `web`: the refusal carries it per service too. */
function serviceReasons(field: string | undefined, message: string): { services?: Record<string, string> } {
  const m = field === undefined ? null : /^(?:services|sealed\.environment)\.([^.]+)/.exec(field);
  return m?.[1] === undefined ? {} : { services: { [m[1]]: message } };
}
