import type { DeviceClaim } from '../protocol/enrollment.js';
import type { ErrorCode } from '../protocol/errors.js';
import { decideClaim, type ClaimPolicy } from './claim-policy.js';
import type { DeviceRecord } from './fleet-database.js';

/** What the fleet database knows that bears on one enrollment request. */
export interface EnrollmentFacts {
  /** The fleet database row holding the request's signing key, if any. */
  known: DeviceRecord | undefined;
  /** An active device, other than `known`, with the serial the request claims. */
  sameSerial: DeviceRecord | undefined;
  /** True when `known` is a re-key request naming a device that has since been revoked. */
  replacesRevoked: boolean;
  /** The id derived from the request's signing key. */
  derivedId: string;
  policy: ClaimPolicy;
  claim: DeviceClaim;
}

/** What to do with one enrollment request; carried out by the enrollment service. */
export type EnrollmentDecision =
  | { kind: 'refuse'; code: ErrorCode; reason: string; deviceId: string | null }
  /** A new device waits for an operator (approve mode). */
  | { kind: 'pending'; deviceId: string }
  /** A new key claims the serial of an active device: it waits for an operator, in every claim mode. */
  | { kind: 'rekey-pending'; deviceId: string; replaces: string }
  | { kind: 'accept'; deviceId: string; event: 'enrolled' | 're-enrolled' | 'enrolled-as-new' }
  /** An approved re-key request: the active device `deviceId` takes the request's keys. */
  | { kind: 'rekey'; requestDeviceId: string; deviceId: string };

/**
 * Decide one request. Pure: no I/O. The serial is only what the device
 * claims, so a key the fleet database does not hold as active never gets an active
 * device's id without an operator approving that very re-key request.
 */
export function decideEnrollment(f: EnrollmentFacts): EnrollmentDecision {
  const { known } = f;
  if (known?.status === 'revoked') return { kind: 'refuse', code: 'DEVICE_REVOKED', reason: 'an operator revoked this device: its key is refused', deviceId: known.deviceId };
  if (known?.status === 'active') return { kind: 'accept', deviceId: known.deviceId, event: 're-enrolled' };

  const deviceId = known?.deviceId ?? f.derivedId;
  // A re-key request whose device was revoked since: re-keying would bring that device back.
  // Only an operator's `approve --as-new` lets the key in, under its own id.
  if (known !== undefined && f.replacesRevoked) {
    const admitted = known.approved && known.asNew;
    if (!admitted) {
      return {
        kind: 'refuse', code: 'DEVICE_REVOKED', deviceId,
        reason: `this key asks to replace ${known.replaces ?? 'a device'}, which an operator revoked; an operator may admit it as a device of its own: tsunagu-fleet approve --as-new ${deviceId}`,
      };
    }
    const claimDecision = decideClaim(f.policy, f.claim, true);
    if (claimDecision.verdict === 'refuse') return { kind: 'refuse', code: claimDecision.code, reason: claimDecision.reason, deviceId: null };
    return { kind: 'accept', deviceId, event: 'enrolled-as-new' };
  }
  const replaces = f.sameSerial?.deviceId ?? null;
  // An approval counts only for what the operator saw: the same re-key target, or none.
  const approved = known !== undefined && known.approved && known.replaces === replaces;
  // The claim policy applies first, to re-key requests as to new devices.
  const claimDecision = decideClaim(f.policy, f.claim, approved);
  if (claimDecision.verdict === 'refuse') return { kind: 'refuse', code: claimDecision.code, reason: claimDecision.reason, deviceId: null };
  if (replaces !== null) {
    if (!approved) return { kind: 'rekey-pending', deviceId, replaces };
    // Approved as a device of its own: the device whose serial it shares stays as it is.
    return known.asNew ? { kind: 'accept', deviceId, event: 'enrolled-as-new' } : { kind: 'rekey', requestDeviceId: deviceId, deviceId: replaces };
  }
  return claimDecision.verdict === 'pending' ? { kind: 'pending', deviceId } : { kind: 'accept', deviceId, event: 'enrolled' };
}
