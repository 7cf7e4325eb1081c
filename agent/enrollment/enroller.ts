import mqtt, { type MqttClient } from 'mqtt';
import { fullJitterDelay, sleep, type BackoffPolicy } from '../../common/backoff.js';
import type { Logger } from '../../common/logger.js';
import type { BootstrapFile } from '../../protocol/bootstrap.js';
import { fromBase64 } from '../../protocol/bytes.js';
import type { Ed25519 } from '../../protocol/ed25519.js';
import {
  buildEnrollRequest, ENROLL_REQUEST_LIFETIME_MS, newRequestId, openEnrollResponse,
  type DeviceClaim, type EnrollGrant, type FleetPublicKeys,
} from '../../protocol/enrollment.js';
import { asTsunaguError } from '../../protocol/errors.js';
import type { KeyPairs } from '../../protocol/keys.js';
import { enrollTopics } from '../../protocol/topics.js';
import { mqttOptions } from '../link/mqtt-options.js';
import { systemClock, type Clock } from '../clock.js';

export interface EnrollerOptions {
  bootstrap: BootstrapFile;
  keys: KeyPairs;
  claim: DeviceClaim;
  ed: Ed25519;
  logger: Logger;
  signal: AbortSignal;
  /** Retry policy for unreachable brokers, unanswered requests and refusals. */
  backoff?: BackoffPolicy;
  /** A random wait before the first attempt, so a fleet powered up together does not arrive at once. */
  startupJitterMs?: number;
  responseTimeoutMs?: number;
  clock?: Clock;
  random?: () => number;
}

export const DEFAULT_ENROLL_BACKOFF: BackoffPolicy = { baseMs: 1_000, capMs: 5 * 60_000 };

export function fleetKeysOf(bootstrap: BootstrapFile): FleetPublicKeys {
  return {
    fleetId: bootstrap.fleetId,
    signPublicKey: fromBase64(bootstrap.fleetKeys.signPublicKey, 'fleet signPublicKey', 32),
    boxPublicKey: fromBase64(bootstrap.fleetKeys.boxPublicKey, 'fleet boxPublicKey', 32),
  };
}

/**
 * How long a request is sent again as it is, rather than replaced: half its
 * lifetime, so that a repeat is still fresh when a busy service reaches it.
 */
const REQUEST_REUSE_MS = ENROLL_REQUEST_LIFETIME_MS / 2;

/**
 * Enroll with the shared bootstrap credential until the fleet grants an
 * identity. Never gives up on its own (a device in a cupboard should join
 * whenever the fleet is ready); only the signal stops it.
 *
 * A request that gets no answer in time is sent again as it is (same id)
 * while it is fresh, and its answer is taken whenever it comes: a service
 * working through a queue (a fleet powered up together) answers requests in
 * order, and a device that gave up on its request and sent a new one would
 * put itself at the back of the queue again at every retry, never hearing
 * the answer meant for it. The service answers a repeat from its records.
 */
export async function enroll(opts: EnrollerOptions): Promise<EnrollGrant> {
  const { logger, signal } = opts;
  const backoff = opts.backoff ?? DEFAULT_ENROLL_BACKOFF;
  const random = opts.random ?? Math.random;
  const clock = opts.clock ?? systemClock;
  const fleet = fleetKeysOf(opts.bootstrap);
  // Correction learned from a STALE_REQUEST answer: the fleet's clock minus ours.
  let clockOffset = 0;
  let attempt = 0;
  if ((opts.startupJitterMs ?? 0) > 0) await sleep(Math.floor(random() * opts.startupJitterMs!), signal);

  let client: MqttClient | undefined;
  let pending: PendingRequest | undefined;
  try {
    for (;;) {
      signal.throwIfAborted();
      let retryNow = false;
      try {
        if (client === undefined || !client.connected) {
          client?.end(true);
          client = await mqtt.connectAsync(opts.bootstrap.broker.url, mqttOptions(
            { ...opts.bootstrap.broker },
            { clientId: `enroll-${newRequestId().slice(0, 16)}`, clean: true },
          ));
          logger.info({ broker: opts.bootstrap.broker.url }, 'connected with the bootstrap credential');
        }
        // An answer that came while the device waited after a timeout is taken as it is.
        let answer = pending?.answer;
        if (answer === undefined) {
          if (pending !== undefined && clock.now() - pending.builtAt > REQUEST_REUSE_MS) {
            await pending.close();
            pending = undefined;
          }
          if (pending === undefined) {
            const requestId = newRequestId();
            const bytes = buildEnrollRequest({ requestId, device: opts.keys, fleet, claim: opts.claim, now: clock.now() + clockOffset, ed: opts.ed });
            pending = new PendingRequest(requestId, bytes, clock.now(), fleet, opts);
          } else {
            logger.info({ requestId: pending.requestId }, 'sending the unanswered request again');
          }
          answer = await pending.send(client, opts.responseTimeoutMs ?? 20_000, signal);
        }
        const requestId = pending?.requestId;
        if (answer !== undefined) {
          // Answered: the service keeps that answer for this id, so the next attempt needs a new request.
          await pending?.close();
          pending = undefined;
        }
        if (answer === undefined) {
          logger.warn({ requestId }, 'no enrollment answer in time; retrying');
        } else if (answer.ok) {
          logger.info({ deviceId: answer.grant.deviceId }, 'enrolled');
          return answer.grant;
        } else if (answer.code === 'STALE_REQUEST' && clockOffset === 0) {
          clockOffset = answer.fleetTime - clock.now();
          logger.warn({ offsetMs: clockOffset }, 'device clock is off; retrying with the fleet time');
          retryNow = true;
        } else if (answer.code === 'CLAIM_PENDING') {
          logger.info({ message: answer.message }, 'waiting for an operator to approve this device');
        } else {
          logger.error({ code: answer.code, message: answer.message }, 'enrollment refused');
        }
      } catch (err) {
        if (signal.aborted) throw err;
        const e = asTsunaguError(err);
        logger.warn({ err: e.message }, 'enrollment attempt failed');
        client?.end(true);
        client = undefined;
      }
      if (!retryNow) {
        const delay = fullJitterDelay(attempt++, backoff, random);
        logger.info({ delayMs: delay, attempt }, 'next enrollment attempt');
        // A late answer to the request in flight ends the wait: it is taken at the top of the loop.
        if (pending !== undefined) await pending.answeredOrAfter(delay, signal);
        else await sleep(delay, signal);
      }
    }
  } finally {
    await pending?.close();
    await client?.endAsync(true).catch(() => undefined);
  }
}

/**
 * One request and its answer topic. Subscribed on every connection it is
 * sent on, and listening until closed: an answer that comes after the
 * device stopped waiting is kept, not lost.
 */
class PendingRequest {
  answer: ReturnType<typeof openEnrollResponse> | undefined;
  private readonly topic: string;
  private client: MqttClient | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly onMessage = (t: string, payload: Buffer): void => {
    if (t !== this.topic || this.answer !== undefined) return;
    try {
      this.answer = openEnrollResponse(new Uint8Array(payload), { requestId: this.requestId, fleet: this.fleet, device: this.opts.keys, ed: this.opts.ed });
    } catch (err) {
      // A forged or broken answer is ignored; the real one may still come.
      this.opts.logger.warn({ err: asTsunaguError(err).toJSON() }, 'ignored an invalid enrollment answer');
      return;
    }
    for (const wake of this.waiters) wake();
  };

  constructor(
    readonly requestId: string, private readonly bytes: Uint8Array, readonly builtAt: number,
    private readonly fleet: FleetPublicKeys, private readonly opts: EnrollerOptions,
  ) {
    this.topic = enrollTopics.response(requestId);
  }

  /** Publish the request (subscribing first on a new connection); resolve with the answer, or undefined after `timeoutMs`. */
  async send(client: MqttClient, timeoutMs: number, signal: AbortSignal): Promise<ReturnType<typeof openEnrollResponse> | undefined> {
    if (this.client !== client) {
      this.client?.removeListener('message', this.onMessage);
      this.client = client;
      client.on('message', this.onMessage);
      await client.subscribeAsync(this.topic, { qos: 1 });
    }
    await client.publishAsync(enrollTopics.request, Buffer.from(this.bytes), { qos: 1 });
    await this.answeredOrAfter(timeoutMs, signal, true);
    return this.answer;
  }

  /** Resolves when the answer is in, or after `ms`; rejects on abort unless `quietAbort`. */
  answeredOrAfter(ms: number, signal: AbortSignal, quietAbort = false): Promise<void> {
    if (this.answer !== undefined) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        done();
        if (!quietAbort) reject(signal.reason as Error);
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client === undefined) return;
    client.removeListener('message', this.onMessage);
    if (client.connected) await client.unsubscribeAsync(this.topic).catch(() => undefined);
  }
}
