import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DeviceClaim } from '../../protocol/enrollment.js';
import { ClaimPolicySchema, decideClaim, hashClaimToken, type ClaimPolicy } from '../../provisioning/claim-policy.js';

const claim: DeviceClaim = { serial: 'SN-0001', model: 'board', arch: 'arm64', macs: [], hostname: 'edge-1' };
const tokenPolicy: ClaimPolicy = { mode: 'token', tokenSha256: hashClaimToken('batch-7-secret') };

test('hashClaimToken is hex SHA-256 of the UTF-8 token', () => {
  assert.equal(hashClaimToken('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.match(hashClaimToken('トークン'), /^[0-9a-f]{64}$/);
});

test('allowlist: a listed serial is accepted', () => {
  assert.deepEqual(decideClaim({ mode: 'allowlist', serials: ['SN-0000', 'SN-0001'] }, claim, false), { verdict: 'accept' });
});

test('allowlist: an unknown serial is refused with UNKNOWN_SERIAL', () => {
  const decision = decideClaim({ mode: 'allowlist', serials: ['SN-0000'] }, claim, false);
  assert.equal(decision.verdict, 'refuse');
  assert.equal(decision.verdict === 'refuse' && decision.code, 'UNKNOWN_SERIAL');
  // Exact match only: no prefix, no case folding.
  assert.equal(decideClaim({ mode: 'allowlist', serials: ['SN-000', 'sn-0001'] }, claim, false).verdict, 'refuse');
});

test('allowlist: an operator approval does not bypass the list', () => {
  assert.equal(decideClaim({ mode: 'allowlist', serials: [] }, claim, true).verdict, 'refuse');
});

test('token: the right token is accepted', () => {
  assert.deepEqual(decideClaim(tokenPolicy, { ...claim, claimToken: 'batch-7-secret' }, false), { verdict: 'accept' });
});

test('token: a wrong token or none is refused with BAD_CLAIM_TOKEN', () => {
  for (const presented of [{ claimToken: 'batch-7-secreT' }, { claimToken: '' }, {}]) {
    const decision = decideClaim(tokenPolicy, { ...claim, ...presented }, false);
    assert.equal(decision.verdict, 'refuse');
    assert.equal(decision.verdict === 'refuse' && decision.code, 'BAD_CLAIM_TOKEN');
  }
});

test('approve: an unapproved device is pending, an approved one accepted', () => {
  assert.deepEqual(decideClaim({ mode: 'approve' }, claim, false), { verdict: 'pending' });
  assert.deepEqual(decideClaim({ mode: 'approve' }, claim, true), { verdict: 'accept' });
});

test('the policy schema accepts the three modes and refuses anything else', () => {
  assert.equal(ClaimPolicySchema.safeParse({ mode: 'approve' }).success, true);
  assert.equal(ClaimPolicySchema.safeParse({ mode: 'allowlist', serials: ['a'] }).success, true);
  assert.equal(ClaimPolicySchema.safeParse(tokenPolicy).success, true);
  assert.equal(ClaimPolicySchema.safeParse({ mode: 'token', tokenSha256: 'batch-7-secret' }).success, false, 'the token itself is never stored');
  assert.equal(ClaimPolicySchema.safeParse({ mode: 'allowlist', serials: [''] }).success, false);
  assert.equal(ClaimPolicySchema.safeParse({ mode: 'open' }).success, false);
  assert.equal(ClaimPolicySchema.safeParse({ mode: 'approve', extra: 1 }).success, false);
});
