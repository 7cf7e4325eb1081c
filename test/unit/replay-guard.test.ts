import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EMPTY_REPLAY_STATE, guardFleetMessage, type ReplayState } from '../../agent/commands/replay-guard.js';
import type { SignedPayload } from '../../protocol/envelope.js';

const DEVICE = 'd-0123456789abcdef0123';
const KID = '00112233aabbccdd';
const NOW = Date.parse('2026-11-25T12:00:00Z');
let n = 0;

function msg(over: Partial<SignedPayload> = {}): SignedPayload {
  n++;
  return { typ: 'cmd', id: n.toString(16).padStart(32, '0'), to: DEVICE, iat: NOW, exp: NOW + 60_000, ctr: 1_000 + n, data: {}, ...over };
}

function accept(state: ReplayState, m: SignedPayload, ctx: { now?: number; trusted?: boolean; remember?: number } = {}): ReplayState {
  const v = guardFleetMessage(state, m, { deviceId: DEVICE, kid: KID, now: ctx.now ?? NOW, clockTrusted: ctx.trusted ?? true, ...(ctx.remember === undefined ? {} : { remember: ctx.remember }) });
  assert.ok(v.accept, v.accept ? '' : `${v.code}: ${v.reason}`);
  return v.next;
}

function refuse(state: ReplayState, m: SignedPayload, ctx: { now?: number; trusted?: boolean; remember?: number } = {}): { code: string; duplicate: boolean } {
  const v = guardFleetMessage(state, m, { deviceId: DEVICE, kid: KID, now: ctx.now ?? NOW, clockTrusted: ctx.trusted ?? true, ...(ctx.remember === undefined ? {} : { remember: ctx.remember }) });
  assert.ok(!v.accept);
  return { code: v.code, duplicate: v.duplicate };
}

test('a message for another device is refused', () => {
  assert.equal(refuse(EMPTY_REPLAY_STATE, msg({ to: 'd-ffffffffffffffffffff' })).code, 'WRONG_DEVICE');
});

test('a fleet message without a counter is refused', () => {
  const { ctr: _c, ...noCtr } = msg();
  assert.equal(refuse(EMPTY_REPLAY_STATE, noCtr as SignedPayload).code, 'SCHEMA');
});

test('the same id twice is a duplicate; the input state is never mutated', () => {
  const m = msg();
  const frozen = structuredClone(EMPTY_REPLAY_STATE);
  const s = accept(frozen, m);
  assert.deepEqual(frozen, EMPTY_REPLAY_STATE);
  assert.deepEqual(refuse(s, m), { code: 'REPLAYED', duplicate: true });
});

test('once the remembered set is full, the floor rises and older counters are replays', () => {
  let s = EMPTY_REPLAY_STATE;
  const sent = Array.from({ length: 6 }, () => msg());
  for (const m of sent) s = accept(s, m, { remember: 4 });
  assert.equal(s.keys[KID]!.seen.length, 4);
  // The two oldest were forgotten by id but are still refused by the floor.
  assert.deepEqual(refuse(s, sent[0]!, { remember: 4 }), { code: 'REPLAYED', duplicate: false });
  assert.deepEqual(refuse(s, { ...sent[1]!, id: 'f'.repeat(32) }, { remember: 4 }), { code: 'REPLAYED', duplicate: false });
  // Out-of-order delivery above the floor is fine.
  accept(s, msg({ ctr: sent[5]!.ctr! + 100 }), { remember: 4 });
});

test('trusted clock: expired and far-future messages are refused', () => {
  assert.equal(refuse(EMPTY_REPLAY_STATE, msg({ exp: NOW - 1 })).code, 'EXPIRED');
  assert.equal(refuse(EMPTY_REPLAY_STATE, msg({ iat: NOW + 3_600_000, exp: NOW + 7_200_000 })).code, 'NOT_YET_VALID');
});

test('untrusted clock (a board booted in 1970 or years ahead): never refused for the device clock alone', () => {
  for (const now of [0, Date.parse('1970-01-01T00:00:10Z'), NOW + 5 * 365 * 86_400_000]) {
    accept(EMPTY_REPLAY_STATE, msg(), { now, trusted: false });
  }
});

test('untrusted clock: expiry is judged by the fleet time of newer messages', () => {
  const old = msg({ iat: NOW - 120_000, exp: NOW - 60_000, ctr: 10 });
  const fresh = msg({ iat: NOW, exp: NOW + 60_000, ctr: 20 });
  const s = accept(EMPTY_REPLAY_STATE, fresh, { now: 0, trusted: false });
  assert.equal(s.keys[KID]!.fleetTime, NOW);
  assert.equal(refuse(s, old, { now: 0, trusted: false }).code, 'EXPIRED');
});
