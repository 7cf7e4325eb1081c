import { stringify } from 'yaml';
import { defaultEd25519, tweetnaclEd25519, type Ed25519 } from '../../protocol/ed25519.js';
import { decodeEnvelope, newMessageId, signEnvelope } from '../../protocol/envelope.js';
import { generateKeyPairs, keyId } from '../../protocol/keys.js';
import { prepareDeployment, desiredDataFor } from '../../provisioning/deploy/compose-document.js';
import { DESIRED_LIMITS } from '../../protocol/commands.js';
import type { FigureResult } from '../figure.js';
import { idleServicesCompose, serviceNames } from '../services-compose.js';
import { summarize } from '../stats.js';
import { SERVICES_PER_DEVICE } from './steady-footprint.js';

/** Mean ms of one verification over `n`, after the caller's warm-up. */
function timeVerify(ed: Ed25519, body: Uint8Array, signature: Uint8Array, publicKey: Uint8Array, n: number): number {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) if (!ed.verify(body, signature, publicKey)) throw new Error(`${ed.name} refused a valid signature`);
  return (performance.now() - t0) / n;
}

/**
 * Ed25519 verification of one real message — the signed desired state of
 * the 10-service footprint deployment, as the device receives it — with the
 * implementation the agent chooses (node:crypto, OpenSSL) against tweetnacl
 * alone, in alternating runs.
 */
export function measureSignatureVerify(runs: number): FigureResult {
  const fleet = generateKeyPairs();
  const device = generateKeyPairs();
  const image = '127.0.0.1:5000/tsunagu-test/busybox:1';
  const data = desiredDataFor(prepareDeployment(stringify(idleServicesCompose(image, 'bench', serviceNames(SERVICES_PER_DEVICE)))), Date.now(), Buffer.from(device.boxPublicKey).toString('base64'));
  const native = defaultEd25519();
  if (native.name !== 'native') throw new Error('this Node has no native Ed25519: the figure would compare tweetnacl with itself');
  const now = Date.now();
  const wire = signEnvelope({ typ: 'desired', id: newMessageId(), to: 'd-benchbenchbenchbench', iat: now, exp: now + 60_000, ctr: now, data }, keyId(fleet.signPublicKey), fleet.signSecretKey, native);
  const { body, signature } = decodeEnvelope(wire, DESIRED_LIMITS);
  timeVerify(native, body, signature, fleet.signPublicKey, 200);
  timeVerify(tweetnaclEd25519, body, signature, fleet.signPublicKey, 5);
  const nativeMs: number[] = [];
  const naclMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    nativeMs.push(timeVerify(native, body, signature, fleet.signPublicKey, 2000));
    naclMs.push(timeVerify(tweetnaclEd25519, body, signature, fleet.signPublicKey, 40));
  }
  return {
    key: 'verify',
    title: 'signature verification per message',
    value: { summary: summarize(nativeMs), unit: 'ms', digits: 3 },
    baseline: { title: 'tweetnacl alone', value: { summary: summarize(naclMs), unit: 'ms', digits: 2 } },
    judged: { label: 'native faster by', value: { summary: summarize(naclMs.map((n, i) => n / nativeMs[i]!)), unit: '×', digits: 0 } },
    target: { op: '>=', limit: 50 },
    note: `The signed body of a ${SERVICES_PER_DEVICE}-service desired state (${body.length} bytes), verified with the agent's choice (node:crypto, OpenSSL; canonical-S check included) and with tweetnacl; ${runs} alternating runs of 2000 and 40 verifications.`,
  };
}
