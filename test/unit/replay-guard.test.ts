import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BootInstant } from '../../agent/commands/fleet-horizon.js';
import { EMPTY_REPLAY_STATE, guardFleetMessage, ReplayStateSchema, type ReplayState } from '../../agent/commands/replay-guard.js';
import type { SignedPayload } from '../../protocol/envelope.js';

const DEVICE = 'd-0123456789abcdef0123';
const KID = '00112233aabbccdd';
const NOW = Date.parse('2026-11-25T12:00:00Z');
let n = 0;

function msg(over: Partial<SignedPayload> = {}): SignedPayload {
  n++;
  return { typ: 'cmd', id: n.toString(16).padStart(32, '0'), to: DEVICE, iat: NOW, exp: NOW + 60_000, ctr: 1_000 + n, data: {}, ...over };
}

/** The boot clock one minute after boot `b1`, unless a test says otherwise. */
const BOOT: BootInstant = { boot: 'b1', ms: 60_000 };
const MINUTE = 60_000;
const YEAR = 365 * 86_400_000;

interface Ctx { now?: number; trusted?: boolean; remember?: number; boot?: BootInstant | null }

function guard(state: ReplayState, m: SignedPayload, ctx: Ctx): ReturnType<typeof guardFleetMessage> {
  return guardFleetMessage(state, m, {
    deviceId: DEVICE, kid: KID, now: ctx.now ?? NOW, clockTrusted: ctx.trusted ?? true, boot: ctx.boot === null ? undefined : (ctx.boot ?? BOOT),
    ...(ctx.remember === undefined ? {} : { remember: ctx.remember }),
  });
}

function accept(state: ReplayState, m: SignedPayload, ctx: Ctx = {}): ReplayState {
  const v = guard(state, m, ctx);
  assert.ok(v.accept, v.accept ? '' : `${v.code}: ${v.reason}`);
  return v.next;
}

function refuse(state: ReplayState, m: SignedPayload, ctx: Ctx = {}): { code: string; duplicate: boolean } {
  const v = guard(state, m, ctx);
  assert.ok(!v.accept, '!v.accept');
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

// The bound on fleet time (docs/protocol.md §9.1, issue 13): one message, signed
// by a fleet host whose clock jumped, must not lock the channel.
const untrusted = (boot: BootInstant = BOOT): Ctx => ({ now: 0, trusted: false, boot });
const later = (boot: BootInstant, ms: number): BootInstant => ({ boot: boot.boot, ms: boot.ms + ms });

test('untrusted clock: a message issued far ahead of the horizon is FLEET_TIME_AHEAD and changes nothing', () => {
  const s = accept(EMPTY_REPLAY_STATE, msg(), untrusted());
  assert.deepEqual(s.keys[KID]!.horizon, { boot: 'b1', at: BOOT.ms, until: NOW + 60_000 });
  const jumped = msg({ iat: NOW + YEAR, exp: NOW + YEAR + 60_000 });
  assert.deepEqual(refuse(s, jumped, untrusted()), { code: 'FLEET_TIME_AHEAD', duplicate: false });
  // Refused, not recorded: a correctly timed command right after is accepted.
  const next = accept(s, msg(), untrusted(later(BOOT, 1_000)));
  assert.equal(next.keys[KID]!.fleetTime, NOW);
  // And the refused message stays refused when delivered again.
  assert.equal(refuse(next, jumped, untrusted(later(BOOT, 2_000))).code, 'FLEET_TIME_AHEAD');
});

test('the bound is the horizon plus five minutes plus 1 ms per second of boot clock', () => {
  const s = accept(EMPTY_REPLAY_STATE, msg(), untrusted());
  const horizon = NOW + 60_000;
  accept(s, msg({ iat: horizon + 5 * MINUTE, exp: horizon + 6 * MINUTE }), untrusted());
  assert.equal(refuse(s, msg({ iat: horizon + 5 * MINUTE + 1, exp: horizon + 6 * MINUTE }), untrusted()).code, 'FLEET_TIME_AHEAD');
  // 100 days later with no message in between: the horizon followed the boot clock, and a boot
  // clock up to 1000 ppm slow (8640 s in 100 days) is allowed for.
  const elapsed = 100 * 86_400_000;
  const at = later(BOOT, elapsed);
  accept(s, msg({ iat: horizon + elapsed + 5 * MINUTE + elapsed / 1000, exp: horizon + elapsed + 7 * MINUTE + elapsed / 1000 }), untrusted(at));
  assert.equal(refuse(s, msg({ iat: horizon + elapsed + 5 * MINUTE + elapsed / 1000 + 1, exp: NOW + 2 * elapsed }), untrusted(at)).code, 'FLEET_TIME_AHEAD');
});

test('a message delivered late does not pull the horizon back: a fresh one after it is accepted', () => {
  let s = accept(EMPTY_REPLAY_STATE, msg(), untrusted());
  // Two hours of boot clock later, a command signed ten minutes after the first arrives, long
  // expired (it waited in a broker that does not drop expired messages, MQTT 3.1.1).
  const twoHours = later(BOOT, 120 * MINUTE);
  s = accept(s, msg({ iat: NOW + 10 * MINUTE, exp: NOW + 11 * MINUTE }), untrusted(twoHours));
  assert.equal(s.keys[KID]!.horizon!.until, NOW + 60_000 + 120 * MINUTE);
  accept(s, msg({ iat: NOW + 121 * MINUTE, exp: NOW + 122 * MINUTE }), untrusted(later(twoHours, 1_000)));
});

test('after a reboot nothing bounds the fleet time, until a first message sets the horizon of this boot', () => {
  const s = accept(EMPTY_REPLAY_STATE, msg(), untrusted());
  // The device may have been off for a year: the first message of the new boot is accepted.
  const reboot: BootInstant = { boot: 'b2', ms: 30_000 };
  const afterYear = accept(s, msg({ iat: NOW + YEAR, exp: NOW + YEAR + 60_000 }), untrusted(reboot));
  assert.deepEqual(afterYear.keys[KID]!.horizon, { boot: 'b2', at: 30_000, until: NOW + YEAR + 60_000 });
  assert.equal(refuse(afterYear, msg({ iat: NOW + 2 * YEAR, exp: NOW + 2 * YEAR + 60_000 }), untrusted(later(reboot, 1_000))).code, 'FLEET_TIME_AHEAD');
});

test('a device pushed ahead (a file from before the bound) recovers with the next message the fleet signs', () => {
  // As an older agent left it: fleet time a year ahead, set by a message with a counter to match, no horizon.
  const jumpedCtr = NOW + YEAR;
  const pushed = ReplayStateSchema.parse({ v: 1, keys: { [KID]: { floor: 0, fleetTime: NOW + YEAR, seen: [['a'.repeat(32), jumpedCtr]] } } });
  // A message signed before the jump and delivered after it is still judged by fleet time.
  assert.equal(refuse(pushed, msg({ ctr: jumpedCtr - 1 }), untrusted()).code, 'EXPIRED');
  // The fleet host's clock is right again; its counter kept rising from the jump.
  const s = accept(pushed, msg({ ctr: jumpedCtr + 1 }), untrusted());
  assert.equal(s.keys[KID]!.fleetTime, NOW);
  assert.deepEqual(s.keys[KID]!.horizon, { boot: 'b1', at: BOOT.ms, until: NOW + 60_000 });
  // The bound now holds again, and so does expiry by fleet time for messages signed before this one.
  assert.equal(refuse(s, msg({ iat: NOW + YEAR, exp: NOW + YEAR + 60_000, ctr: jumpedCtr + 2 }), untrusted()).code, 'FLEET_TIME_AHEAD');
  assert.equal(refuse(s, msg({ iat: NOW - 2 * MINUTE, exp: NOW - MINUTE, ctr: jumpedCtr }), untrusted()).code, 'EXPIRED');
});

test('with a trusted clock too, the next message signed corrects a fleet time pushed ahead', () => {
  const pushed: ReplayState = { v: 1, keys: { [KID]: { floor: 0, fleetTime: NOW + YEAR, seen: [['a'.repeat(32), 5]] } } };
  assert.equal(accept(pushed, msg({ ctr: 6 })).keys[KID]!.fleetTime, NOW);
});

test('a horizon pushed ahead in a boot is dropped when the fleet time steps back', () => {
  // The first message of a boot is unbounded: here, one from a fleet host whose clock jumped.
  let s = accept(EMPTY_REPLAY_STATE, msg({ iat: NOW + YEAR, exp: NOW + YEAR + 60_000, ctr: 500 }), untrusted());
  s = accept(s, msg({ ctr: 501 }), untrusted(later(BOOT, 1_000)));
  assert.deepEqual(s.keys[KID]!.horizon, { boot: 'b1', at: BOOT.ms + 1_000, until: NOW + 60_000 });
  assert.equal(refuse(s, msg({ iat: NOW + YEAR, exp: NOW + YEAR + 60_000, ctr: 502 }), untrusted(later(BOOT, 2_000))).code, 'FLEET_TIME_AHEAD');
});

test('with a trusted clock the device clock bounds the issue time (NOT_YET_VALID), not the horizon', () => {
  const s = accept(EMPTY_REPLAY_STATE, msg());
  assert.equal(refuse(s, msg({ iat: NOW + YEAR, exp: NOW + YEAR + 60_000 })).code, 'NOT_YET_VALID');
  // A device clock a day ahead of the fleet's last message vouches for a command issued then.
  accept(s, msg({ iat: NOW + 86_400_000, exp: NOW + 86_400_000 + 60_000 }), { now: NOW + 86_400_000 });
});

test('without a boot clock no horizon is kept and none is enforced', () => {
  const s = accept(EMPTY_REPLAY_STATE, msg(), { now: 0, trusted: false, boot: null });
  assert.equal(s.keys[KID]!.horizon, undefined);
  accept(s, msg({ iat: NOW + YEAR, exp: NOW + YEAR + 60_000 }), { now: 0, trusted: false, boot: null });
});

function refusal(state: ReplayState, m: SignedPayload, ctx: Ctx): Extract<ReturnType<typeof guardFleetMessage>, { accept: false }> {
  const v = guard(state, m, ctx);
  assert.ok(!v.accept, 'expected a refusal');
  return v;
}

test('a horizon that lags (the first message of a boot had waited past its expiry) is re-based by the third fresh message, a minute after the first', () => {
  // After a reboot, the first command delivered is one a day old that waited in a broker without message expiry.
  const boot: BootInstant = { boot: 'b2', ms: 10_000 };
  let s = accept(EMPTY_REPLAY_STATE, msg({ iat: NOW - 86_400_000, exp: NOW - 86_400_000 + 60_000, ctr: 100 }), untrusted(boot));
  // The fleet's fresh commands are beyond the bound.
  const first = refusal(s, msg({ ctr: 101 }), untrusted(later(boot, 1_000)));
  assert.equal(first.code, 'FLEET_TIME_AHEAD');
  s = first.next!;
  assert.deepEqual(s.keys[KID]!.ahead, { boot: 'b2', since: 11_000, ctr: 101, count: 1 });
  // The same message again (a redelivery) does not count twice, nor is anything written for it;
  // a burst of retries within the minute is not enough.
  assert.equal(refusal(s, msg({ ctr: 101 }), untrusted(later(boot, 2_000))).next, undefined);
  s = refusal(s, msg({ ctr: 102 }), untrusted(later(boot, 3_000))).next!;
  s = refusal(s, msg({ ctr: 103 }), untrusted(later(boot, 4_000))).next!;
  assert.equal(s.keys[KID]!.ahead.count, 3);
  // A minute after the first: accepted, the horizon starts again from it, the streak is gone.
  const at = later(boot, 61_000);
  s = accept(s, msg({ iat: NOW + MINUTE, exp: NOW + 2 * MINUTE, ctr: 104 }), untrusted(at));
  assert.deepEqual(s.keys[KID]!.horizon, { boot: 'b2', at: at.ms, until: NOW + 2 * MINUTE });
  assert.equal(s.keys[KID]!.ahead, undefined);
  assert.equal(s.keys[KID]!.fleetTime, NOW + MINUTE);
  // The bound holds again from there.
  assert.equal(refuse(s, msg({ iat: NOW + YEAR, exp: NOW + YEAR + 60_000, ctr: 105 }), untrusted(later(at, 1_000))).code, 'FLEET_TIME_AHEAD');
});

test('the streak counts only messages signed after every accepted one and before a new boot; an accepted message ends it', () => {
  let s = accept(EMPTY_REPLAY_STATE, msg({ ctr: 100 }), untrusted());
  s = accept(s, msg({ ctr: 200 }), untrusted());
  // Signed before the last accepted message: refused without counting.
  assert.equal(refusal(s, msg({ iat: NOW + YEAR, exp: NOW + YEAR + 60_000, ctr: 150 }), untrusted()).next, undefined);
  s = refusal(s, msg({ iat: NOW + YEAR, exp: NOW + YEAR + 60_000, ctr: 201 }), untrusted()).next!;
  s = refusal(s, msg({ iat: NOW + YEAR, exp: NOW + YEAR + 60_000, ctr: 202 }), untrusted(later(BOOT, 30_000))).next!;
  assert.equal(s.keys[KID]!.ahead!.count, 2);
  // A correctly timed message in between ends the streak: the next jump starts from one again.
  s = accept(s, msg({ ctr: 203 }), untrusted(later(BOOT, 40_000)));
  assert.equal(s.keys[KID]!.ahead, undefined);
  const again = refusal(s, msg({ iat: NOW + YEAR, exp: NOW + YEAR + 60_000, ctr: 204 }), untrusted(later(BOOT, 90_000)));
  assert.equal(again.next!.keys[KID]!.ahead!.count, 1);
});
