import * as z from 'zod/mini';
import type { SignedPayload } from '../../protocol/envelope.js';
import type { ErrorCode } from '../../protocol/errors.js';
import { advanceHorizon, AheadStreakSchema, extendAheadStreak, FleetHorizonSchema, latestAllowedIssue, streakRebases, type BootInstant } from './fleet-horizon.js';

const count = z.int().check(z.nonnegative());

/**
 * Replay and freshness rules for fleet-signed messages — pure, so the rule
 * can be tested for every clock a device may have.
 *
 * A device may boot with its clock in 1970 (no RTC) or years ahead. So:
 *  1. Replay protection never depends on the device clock. Every fleet
 *     message carries `ctr`, a counter the fleet raises for each message it
 *     signs with a key. Per key, the device remembers the ids of recent
 *     messages and a floor: a message whose id was seen, or whose ctr is at
 *     or below the floor, is a replay. When the remembered set is full the
 *     lowest entries are dropped and the floor rises to them.
 *  2. Expiry is judged against the newest time the device can vouch for:
 *     the fleet's own clock, as carried by the message signed last (highest
 *     `ctr`) among those accepted from that key (`fleetTime`), and the device
 *     clock only when that clock is trusted (NTP-synchronised, or declared so
 *     in the agent config). A message signed after every accepted one is the
 *     fleet's present: fleet time does not judge it, it sets fleet time —
 *     back, too, when the fleet's clock was stepped back. So a fleet time
 *     pushed ahead (a fleet host whose clock jumped, a bug) is corrected by
 *     the next message the fleet signs, and cannot lock the channel.
 *  3. Messages issued "in the future" are refused: with a trusted clock,
 *     beyond a tolerance of it (NOT_YET_VALID); without, beyond a step past
 *     the horizon, the latest fleet time the device can justify from what it
 *     accepted in this boot (FLEET_TIME_AHEAD, see fleet-horizon.ts; a
 *     third such message in a row, a minute after the first, re-bases the
 *     horizon instead, so that a lagging horizon cannot lock the channel).
 *     The device clock alone never refuses a message when it is not trusted.
 */
export const ReplayStateSchema = z.strictObject({
  v: z.literal(1),
  keys: z.record(z.string(), z.strictObject({
    floor: count,
    fleetTime: count,
    seen: z.array(z.tuple([z.string(), count])),
    /** Absent in files written before it existed, and until a message is accepted in a boot. */
    horizon: z.optional(FleetHorizonSchema),
    /** Present while the latest messages were refused for the horizon (FLEET_TIME_AHEAD). */
    ahead: z.optional(AheadStreakSchema),
  })),
});
export type ReplayState = z.infer<typeof ReplayStateSchema>;

export const EMPTY_REPLAY_STATE: ReplayState = { v: 1, keys: {} };

export interface GuardContext {
  deviceId: string;
  kid: string;
  /** Device clock, Unix ms. */
  now: number;
  clockTrusted: boolean;
  /** How many message ids to remember per key. */
  remember?: number;
  /** Tolerated clock difference for "issued in the future", with a trusted clock. */
  futureSkewMs?: number;
  /** The boot clock; undefined where it cannot be read (then no horizon is kept or enforced). */
  boot: BootInstant | undefined;
}

export type GuardVerdict =
  | { accept: true; next: ReplayState }
  /**
   * `duplicate`: this exact message id was accepted before (a QoS 1 redelivery, or a replay of it).
   * `next`: the refusal itself is remembered (a FLEET_TIME_AHEAD streak); save it.
   */
  | { accept: false; code: ErrorCode; reason: string; duplicate: boolean; next?: ReplayState };

export const DEFAULT_REMEMBER = 512;

export function guardFleetMessage(state: ReplayState, payload: SignedPayload, ctx: GuardContext): GuardVerdict {
  if (payload.to !== ctx.deviceId) return { accept: false, code: 'WRONG_DEVICE', reason: `addressed to ${payload.to}`, duplicate: false };
  if (payload.ctr === undefined) return { accept: false, code: 'SCHEMA', reason: 'fleet messages must carry ctr', duplicate: false };
  const key = state.keys[ctx.kid] ?? { floor: 0, fleetTime: 0, seen: [] };
  if (key.seen.some(([id]) => id === payload.id)) return { accept: false, code: 'REPLAYED', reason: 'message id already accepted', duplicate: true };
  if (payload.ctr <= key.floor) return { accept: false, code: 'REPLAYED', reason: `counter ${payload.ctr} at or below ${key.floor}`, duplicate: false };
  // Signed after every message accepted from this key: the fleet's present.
  const newest = payload.ctr > key.seen.reduce((max, [, c]) => Math.max(max, c), key.floor);
  const vouchedNow = Math.max(ctx.clockTrusted ? ctx.now : 0, newest ? 0 : key.fleetTime);
  if (payload.exp < vouchedNow) return { accept: false, code: 'EXPIRED', reason: `expired at ${payload.exp}, now ${vouchedNow}`, duplicate: false };
  if (ctx.clockTrusted && payload.iat > ctx.now + (ctx.futureSkewMs ?? 5 * 60_000)) {
    return { accept: false, code: 'NOT_YET_VALID', reason: `issued at ${payload.iat}, device time ${ctx.now}`, duplicate: false };
  }
  const latest = ctx.clockTrusted || ctx.boot === undefined ? undefined : latestAllowedIssue(key.horizon, ctx.boot);
  let rebase = false;
  if (latest !== undefined && ctx.boot !== undefined && payload.iat > latest) {
    const refusal = { accept: false as const, code: 'FLEET_TIME_AHEAD' as const, reason: `issued at ${payload.iat}, beyond ${latest}, the latest fleet time this device can justify`, duplicate: false };
    if (!newest) return refusal;
    const ahead = extendAheadStreak(key.ahead, ctx.boot, payload.ctr);
    if (!streakRebases(ahead, ctx.boot)) {
      // The same refused message delivered again changes nothing, and nothing is written.
      return ahead === key.ahead ? refusal : { ...refusal, next: { v: 1, keys: { ...state.keys, [ctx.kid]: { ...key, ahead } } } };
    }
    rebase = true;
  }
  let seen = [...key.seen, [payload.id, payload.ctr] as [string, number]];
  let floor = key.floor;
  const remember = ctx.remember ?? DEFAULT_REMEMBER;
  if (seen.length > remember) {
    seen.sort((a, b) => a[1] - b[1]);
    const dropped = seen.slice(0, seen.length - remember);
    seen = seen.slice(seen.length - remember);
    floor = Math.max(floor, ...dropped.map(([, c]) => c));
  }
  const steppedBack = newest && payload.iat < key.fleetTime;
  const horizon = ctx.boot === undefined ? key.horizon : advanceHorizon(key.horizon, ctx.boot, Math.max(payload.exp, payload.iat), steppedBack || rebase);
  const fleetTime = newest ? payload.iat : key.fleetTime;
  return {
    accept: true,
    next: { v: 1, keys: { ...state.keys, [ctx.kid]: { floor, fleetTime, seen, ...(horizon === undefined ? {} : { horizon }) } } },
  };
}
