import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import type { Logger } from '../common/logger.js';
import { fromBase64, toBase64, utf8 } from '../protocol/bytes.js';
import { newSecretClientId } from '../protocol/client-id.js';
import type { Ed25519 } from '../protocol/ed25519.js';
import {
  buildEnrollResponse, buildSealedGrantResponse, ENROLL_LIMITS, isFresh, openEnrollRequest,
  type EnrollGrant, type EnrollOutcome, type EnrollRequest,
} from '../protocol/enrollment.js';
import { decodeEnvelope, verifySignatureBytes } from '../protocol/envelope.js';
import { keyId } from '../protocol/keys.js';
import { asTsunaguError, TsunaguError } from '../protocol/errors.js';
import { parseJsonBytes } from '../protocol/json.js';
import { seal } from '../protocol/seal.js';
import { enrollTopics, REQUEST_ID_PATTERN } from '../protocol/topics.js';
import { deviceRole, deviceRoleName } from './broker-roles.js';
import type { ClaimPolicy } from './claim-policy.js';
import type { DynsecClient } from './dynsec-client.js';
import { decideEnrollment } from './enrollment-decision.js';
import { deriveDeviceId, type FleetDatabase } from './fleet-database.js';

/** The broker-side account of one device, whatever the broker. */
export interface DeviceAccounts {
  /**
   * Create or reset the device's credential and confinement, bound to the
   * client id `clientId` (a secret, see client-id.ts); idempotent.
   */
  grant(deviceId: string, password: string, clientId: string): Promise<void>;
}

export function dynsecAccounts(dynsec: DynsecClient): DeviceAccounts {
  return {
    async grant(deviceId, password, clientId) {
      await dynsec.putRole(deviceRole(deviceId));
      await dynsec.putClient({ username: deviceId, password, clientId, roles: [deviceRoleName(deviceId)] });
    },
  };
}

export interface EnrollmentServiceOptions {
  client: MqttClient;
  accounts: DeviceAccounts;
  database: FleetDatabase;
  fleet: { fleetId: string; signPublicKey: Uint8Array; signSecretKey: Uint8Array; boxSecretKey: Uint8Array };
  policy: () => ClaimPolicy;
  ed: Ed25519;
  logger: Logger;
  now?: () => number;
  /** A retry within this window gets the same credential instead of a new one. */
  grantReuseMs?: number;
}

/**
 * Answers enrollment requests. It never throws on input: every request ends
 * in a grant, a signed refusal (when the request's signature proves who
 * to answer), or an audit entry.
 */
export class EnrollmentService {
  private queue: Promise<void> = Promise.resolve();
  private readonly now: () => number;
  private readonly onMessage = (topic: string, payload: Buffer): void => {
    if (topic !== enrollTopics.request) return;
    // One at a time: requests are cheap, and ordering keeps the fleet database and
    // the broker's account list in step without locks.
    this.queue = this.queue.then(() => this.handle(new Uint8Array(payload))).catch((err: unknown) => {
      this.opts.logger.error({ err: asTsunaguError(err).toJSON() }, 'enrollment handling failed');
    });
  };

  constructor(private readonly opts: EnrollmentServiceOptions) {
    this.now = opts.now ?? Date.now;
  }

  async start(): Promise<void> {
    this.opts.client.on('message', this.onMessage);
    await this.opts.client.subscribeAsync(enrollTopics.requestShared, { qos: 1 });
    this.opts.logger.info({ topic: enrollTopics.requestShared }, 'enrollment service listening');
  }

  async stop(): Promise<void> {
    this.opts.client.removeListener('message', this.onMessage);
    await this.queue;
  }

  /** Resolves once every request received so far is handled (for tests and shutdown). */
  idle(): Promise<void> {
    return this.queue;
  }

  private refuse(code: TsunaguError['code'], message: string, ctx: { requestId?: string; serial?: string; deviceId?: string }): void {
    this.opts.logger.warn({ code, requestId: ctx.requestId, deviceId: ctx.deviceId }, `enrollment refused: ${message}`);
    this.opts.database.audit({ event: 'refused', code, requestId: ctx.requestId ?? null, deviceId: ctx.deviceId ?? null, serial: ctx.serial ?? null, message });
  }

  private async publishResponse(requestId: string, response: Uint8Array): Promise<void> {
    await this.opts.client.publishAsync(enrollTopics.response(requestId), Buffer.from(response), { qos: 1 });
  }

  private respond(requestId: string, outcome: EnrollOutcome, deviceBoxPublicKey: Uint8Array): Uint8Array {
    return buildEnrollResponse({
      requestId, outcome, deviceBoxPublicKey,
      fleet: this.opts.fleet, now: this.now(), ed: this.opts.ed,
    });
  }

  async handle(bytes: Uint8Array): Promise<void> {
    let request: EnrollRequest;
    try {
      request = openEnrollRequest(bytes, { fleetId: this.opts.fleet.fleetId, fleetBoxSecretKey: this.opts.fleet.boxSecretKey, ed: this.opts.ed });
    } catch (err) {
      const e = asTsunaguError(err, 'MALFORMED');
      // Only a request whose signature verified names a box key we may answer;
      // the rest is logged and audited, never answered.
      const answerable = verifiedRequestTarget(bytes, this.opts.ed);
      this.refuse(e.code, e.message, { requestId: answerable?.requestId });
      if (answerable !== undefined) {
        await this.publishResponse(answerable.requestId, this.respond(answerable.requestId, { ok: false, code: e.code, message: e.message }, answerable.boxPublicKey));
      }
      return;
    }
    const { requestId, claim } = request;
    const now = this.now();
    if (!isFresh(request.issuedAt, now)) {
      // The answer carries the fleet's time so a device without RTC can correct its clock and retry.
      this.refuse('STALE_REQUEST', `issued at ${request.issuedAt}, service time ${now}`, { requestId, serial: claim.serial });
      await this.publishResponse(requestId, this.respond(requestId, { ok: false, code: 'STALE_REQUEST', message: 'request time is outside the accepted window; retry with the fleet time' }, request.boxPublicKey));
      return;
    }
    const claimState = this.opts.database.claimRequest(requestId, now);
    if (claimState.kind === 'answered') {
      await this.publishResponse(requestId, claimState.response);
      return;
    }
    if (claimState.kind === 'busy') return;
    try {
      const { response, deviceId } = await this.decide(request, now);
      this.opts.database.finishRequest(requestId, deviceId, response);
      await this.publishResponse(requestId, response);
    } catch (err) {
      // A transient failure (the broker's admin API did not answer): let the
      // device's retry be processed afresh.
      this.opts.database.releaseRequest(requestId);
      const e = asTsunaguError(err);
      this.refuse(e.code, e.message, { requestId, serial: claim.serial });
      throw e;
    }
  }

  private async decide(request: EnrollRequest, now: number): Promise<{ response: Uint8Array; deviceId: string | null }> {
    const { database } = this.opts;
    const { requestId, claim } = request;
    const signPk = toBase64(request.signPublicKey);
    const known = database.byKey(signPk);
    const sameSerial = database.activeBySerial(claim.serial);
    const decision = decideEnrollment({
      known, sameSerial: sameSerial?.deviceId === known?.deviceId ? undefined : sameSerial,
      replacesRevoked: known?.replaces != null && database.byId(known.replaces)?.status === 'revoked',
      derivedId: deriveDeviceId(signPk), policy: this.opts.policy(), claim,
    });
    const facts = {
      signPublicKey: signPk, boxPublicKey: toBase64(request.boxPublicKey), serial: claim.serial, model: claim.model, arch: claim.arch,
      macs: claim.macs, hostname: claim.hostname, now,
    };
    const refusal = (code: TsunaguError['code'], message: string): Uint8Array =>
      this.respond(requestId, { ok: false, code, message }, request.boxPublicKey);

    switch (decision.kind) {
      case 'refuse':
        this.refuse(decision.code, decision.reason, { requestId, serial: claim.serial, ...(decision.deviceId === null ? {} : { deviceId: decision.deviceId }) });
        return { response: refusal(decision.code, decision.reason), deviceId: decision.deviceId };
      case 'pending': {
        const { deviceId } = decision;
        database.upsertDevice({ ...facts, deviceId, status: 'pending', enrolledAt: null, replaces: null });
        database.audit({ event: 'pending', code: 'CLAIM_PENDING', requestId, deviceId, serial: claim.serial, message: 'waiting for approval' });
        this.opts.logger.info({ deviceId, requestId }, 'device waits for approval (tsunagu-fleet approve)');
        return { response: refusal('CLAIM_PENDING', `waiting for an operator: tsunagu-fleet approve ${deviceId}`), deviceId };
      }
      case 'rekey-pending': {
        // The active device's record, account and password stay as they are.
        const { deviceId, replaces } = decision;
        database.upsertDevice({ ...facts, deviceId, status: 'pending', enrolledAt: null, replaces });
        const approve = `an operator must approve the re-key: tsunagu-fleet approve ${deviceId}`;
        database.audit({ event: 'rekey-requested', code: 'CLAIM_PENDING', requestId, deviceId, serial: claim.serial, message: `a new key presents the serial of active device ${replaces}: ${approve}` });
        this.opts.logger.warn({ deviceId, replaces, requestId }, 're-key request waits for approval (tsunagu-fleet approve)');
        // Only the operator learns which device the serial belongs to: whoever holds the
        // bootstrap file (and claim token) could otherwise map any serial to its device id.
        return { response: refusal('CLAIM_PENDING', `a new key presents the serial of an active device: ${approve}`), deviceId };
      }
      case 'accept': {
        const { deviceId, event } = decision;
        // A retry shortly after a grant gets the same sealed grant, so two
        // instances or a quick retry never leave the device with a stale password.
        const sealedGrant = (known === undefined ? undefined : database.recentGrant(deviceId, now, this.opts.grantReuseMs ?? 60_000))
          ?? await this.newGrant(deviceId, request.boxPublicKey);
        // An approved re-key request admitted as new keeps `replaces` until now, so the approval held.
        database.upsertDevice({ ...facts, deviceId, status: 'active', enrolledAt: now, replaces: null });
        database.recordGrant(deviceId, sealedGrant, now);
        database.audit({ event, code: null, requestId, deviceId, serial: claim.serial, message: `${event} (${claim.model}, ${claim.arch})` });
        this.opts.logger.info({ deviceId, requestId, event }, `device ${event}`);
        return { response: this.responseWithSealedGrant(requestId, sealedGrant), deviceId };
      }
      case 'rekey': {
        const { deviceId, requestDeviceId } = decision;
        const sealedGrant = await this.newGrant(deviceId, request.boxPublicKey);
        if (!database.completeRekey({ ...facts, requestDeviceId, deviceId, sealedGrant })) {
          // The fleet database changed under us (another instance, or the device was
          // revoked): let the device's next attempt be decided afresh.
          throw new TsunaguError('INTERNAL', `re-key of ${deviceId} by ${requestDeviceId} no longer applies`);
        }
        database.audit({ event: 'rekeyed', code: null, requestId, deviceId, serial: claim.serial, message: `rekeyed: the keys of approved request ${requestDeviceId} replace the keys of ${deviceId}` });
        this.opts.logger.info({ deviceId, requestDeviceId, requestId }, 'device rekeyed');
        return { response: this.responseWithSealedGrant(requestId, sealedGrant), deviceId };
      }
    }
  }

  /**
   * Create or reset the device's broker account with a new password and a
   * new secret client id, and seal the grant to the device. The client id
   * exists in plain only in the grant and the broker's account: it is never
   * logged, audited or stored in the fleet database (which keeps the sealed grant).
   */
  private async newGrant(deviceId: string, deviceBoxPublicKey: Uint8Array): Promise<string> {
    const grant: EnrollGrant = { deviceId, username: deviceId, clientId: newSecretClientId(), password: randomBytes(24).toString('base64url') };
    await this.opts.accounts.grant(deviceId, grant.password, grant.clientId);
    return toBase64(seal(utf8(JSON.stringify(grant)), deviceBoxPublicKey));
  }

  private responseWithSealedGrant(requestId: string, sealedGrant: string): Uint8Array {
    return buildSealedGrantResponse({ requestId, sealedGrant, fleet: this.opts.fleet, now: this.now(), ed: this.opts.ed });
  }
}

/**
 * After a failure, find out whether the request was validly signed and
 * names a request id and box key to answer. Anything less gets no answer:
 * a reply to an unauthenticated request could be steered at a victim.
 */
function verifiedRequestTarget(bytes: Uint8Array, ed: Ed25519): { requestId: string; boxPublicKey: Uint8Array } | undefined {
  try {
    const env = decodeEnvelope(bytes, ENROLL_LIMITS);
    const body = parseJsonBytes(env.body, ENROLL_LIMITS) as { id?: unknown; data?: { boxPublicKey?: unknown; signPublicKey?: unknown } };
    if (typeof body.id !== 'string' || !REQUEST_ID_PATTERN.test(body.id)) return undefined;
    if (typeof body.data?.boxPublicKey !== 'string' || typeof body.data.signPublicKey !== 'string') return undefined;
    const signPublicKey = fromBase64(body.data.signPublicKey, 'signPublicKey', 32);
    if (env.kid !== keyId(signPublicKey)) return undefined;
    verifySignatureBytes(env.body, env.signature, signPublicKey, ed);
    return { requestId: body.id, boxPublicKey: fromBase64(body.data.boxPublicKey, 'boxPublicKey', 32) };
  } catch {
    return undefined;
  }
}
