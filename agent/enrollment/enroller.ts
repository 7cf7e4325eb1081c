import mqtt, { type MqttClient } from 'mqtt';
import { fullJitterDelay, sleep, type BackoffPolicy } from '../../common/backoff.js';
import type { Logger } from '../../common/logger.js';
import type { BootstrapFile } from '../../protocol/bootstrap.js';
import { fromBase64 } from '../../protocol/bytes.js';
import type { Ed25519 } from '../../protocol/ed25519.js';
import {
  buildEnrollRequest, newRequestId, openEnrollResponse,
  type DeviceClaim, type EnrollGrant, type FleetPublicKeys,
} from '../../protocol/enrollment.js';
import { asTsunaguError } from '../../protocol/errors.js';
import type { KeyPairs } from '../../protocol/keys.js';
import { enrollTopics } from '../../protocol/topics.js';
import { mqttOptions } from '../link/mqtt-options.js';

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
  clock?: () => number;
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
 * Enroll with the shared bootstrap credential until the fleet grants an
 * identity. Never gives up on its own (a device in a cupboard should join
 * whenever the fleet is ready); only the signal stops it.
 */
export async function enroll(opts: EnrollerOptions): Promise<EnrollGrant> {
  const { logger, signal } = opts;
  const backoff = opts.backoff ?? DEFAULT_ENROLL_BACKOFF;
  const random = opts.random ?? Math.random;
  const clock = opts.clock ?? Date.now;
  const fleet = fleetKeysOf(opts.bootstrap);
  // Correction learned from a STALE_REQUEST answer: the fleet's clock minus ours.
  let clockOffset = 0;
  let attempt = 0;
  if ((opts.startupJitterMs ?? 0) > 0) await sleep(Math.floor(random() * opts.startupJitterMs!), signal);

  let client: MqttClient | undefined;
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
        const requestId = newRequestId();
        const answer = await requestOnce(client, requestId, opts, fleet, clock() + clockOffset, opts.responseTimeoutMs ?? 20_000, signal);
        if (answer === undefined) {
          logger.warn({ requestId }, 'no enrollment answer in time; retrying');
        } else if (answer.ok) {
          logger.info({ deviceId: answer.grant.deviceId }, 'enrolled');
          return answer.grant;
        } else if (answer.code === 'STALE_REQUEST' && clockOffset === 0) {
          clockOffset = answer.fleetTime - clock();
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
        await sleep(delay, signal);
      }
    }
  } finally {
    await client?.endAsync(true).catch(() => undefined);
  }
}

async function requestOnce(
  client: MqttClient, requestId: string, opts: EnrollerOptions, fleet: FleetPublicKeys,
  now: number, timeoutMs: number, signal: AbortSignal,
): Promise<ReturnType<typeof openEnrollResponse> | undefined> {
  const topic = enrollTopics.response(requestId);
  const answer = new Promise<ReturnType<typeof openEnrollResponse> | undefined>((resolve) => {
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    const onAbort = (): void => finish(undefined);
    const onMessage = (t: string, payload: Buffer): void => {
      if (t !== topic) return;
      try {
        finish(openEnrollResponse(new Uint8Array(payload), { requestId, fleet, device: opts.keys, ed: opts.ed }));
      } catch (err) {
        // A forged or broken answer is ignored; the real one may still come.
        opts.logger.warn({ err: asTsunaguError(err).toJSON() }, 'ignored an invalid enrollment answer');
      }
    };
    function finish(value: ReturnType<typeof openEnrollResponse> | undefined): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      client.removeListener('message', onMessage);
      resolve(value);
    }
    signal.addEventListener('abort', onAbort, { once: true });
    client.on('message', onMessage);
  });
  await client.subscribeAsync(topic, { qos: 1 });
  const request = buildEnrollRequest({ requestId, device: opts.keys, fleet, claim: opts.claim, now, ed: opts.ed });
  await client.publishAsync(enrollTopics.request, Buffer.from(request), { qos: 1 });
  const result = await answer;
  await client.unsubscribeAsync(topic).catch(() => undefined);
  return result;
}
