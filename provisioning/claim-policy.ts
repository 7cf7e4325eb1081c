import { createHash, timingSafeEqual } from 'node:crypto';
import * as z from 'zod';
import type { DeviceClaim } from '../protocol/enrollment.js';
import type { ErrorCode } from '../protocol/errors.js';

/**
 * How the fleet decides whether an unknown device may join:
 * - allowlist: its serial is listed;
 * - token: it presents the batch claim token (stored here only as SHA-256);
 * - approve: it waits on a pending list until an operator approves it.
 */
export const ClaimPolicySchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('allowlist'), serials: z.array(z.string().min(1)) }).strict(),
  z.object({ mode: z.literal('token'), tokenSha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict(),
  z.object({ mode: z.literal('approve') }).strict(),
]);
export type ClaimPolicy = z.infer<typeof ClaimPolicySchema>;

export type ClaimDecision =
  | { verdict: 'accept' }
  | { verdict: 'pending' }
  | { verdict: 'refuse'; code: ErrorCode; reason: string };

export function hashClaimToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Pure decision for one claim. `approved` says whether an operator already
 * approved this device (by its key) on the pending list.
 */
export function decideClaim(policy: ClaimPolicy, claim: DeviceClaim, approved: boolean): ClaimDecision {
  switch (policy.mode) {
    case 'allowlist':
      return policy.serials.includes(claim.serial)
        ? { verdict: 'accept' }
        : { verdict: 'refuse', code: 'UNKNOWN_SERIAL', reason: 'the serial is not on the allowlist' };
    case 'token': {
      if (claim.claimToken === undefined) return { verdict: 'refuse', code: 'BAD_CLAIM_TOKEN', reason: 'no claim token presented' };
      const presented = Buffer.from(hashClaimToken(claim.claimToken), 'hex');
      const expected = Buffer.from(policy.tokenSha256, 'hex');
      return timingSafeEqual(presented, expected)
        ? { verdict: 'accept' }
        : { verdict: 'refuse', code: 'BAD_CLAIM_TOKEN', reason: 'the claim token is wrong' };
    }
    case 'approve':
      return approved ? { verdict: 'accept' } : { verdict: 'pending' };
  }
}
