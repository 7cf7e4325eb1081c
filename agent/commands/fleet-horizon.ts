import * as z from 'zod/mini';

/**
 * The device's boot clock, read once: which boot it is in, and the
 * milliseconds since that boot began (time suspended included). It survives
 * agent restarts and starts again at each boot: unlike the wall clock, no one
 * sets it.
 */
export interface BootInstant {
  boot: string;
  ms: number;
}

const count = z.int().check(z.nonnegative());

/**
 * The latest time the fleet's clock can have reached, as far as the device
 * can justify without a trusted clock of its own: `until` (the largest `exp`
 * of the fleet messages accepted in this boot — each was still valid when it
 * arrived) as of `at` on the boot clock of boot `boot`. Moving forward with
 * the boot clock, it never lags the fleet's real clock unless a message was
 * delivered after it expired, or the boot clock runs slow.
 */
export const FleetHorizonSchema = z.strictObject({
  boot: z.string().check(z.minLength(1), z.maxLength(64)),
  at: count,
  until: count,
});
export type FleetHorizon = z.infer<typeof FleetHorizonSchema>;

/**
 * How far one message may be issued ahead of the horizon: the window the
 * protocol already grants a trusted device clock (NOT_YET_VALID) and the
 * fleet an enrolling device's clock (STALE_REQUEST). A few minutes covers a
 * fleet host's clock being stepped by NTP; anything beyond is a clock that
 * jumped or a bug, not a delay.
 */
export const FLEET_TIME_STEP_MS = 5 * 60_000;

/**
 * Added per millisecond of boot clock since the horizon was set: 1000 ppm,
 * twenty times a common crystal's error, so that a device that heard nothing
 * from the fleet for months is not refused because its clock ran slow.
 */
export const BOOT_CLOCK_DRIFT = 1 / 1000;

/** The horizon projected to `now`, or undefined when this boot has none (never set, or set in an earlier boot). */
export function horizonAt(horizon: FleetHorizon | undefined, now: BootInstant): number | undefined {
  if (horizon === undefined || horizon.boot !== now.boot || now.ms < horizon.at) return undefined;
  return horizon.until + (now.ms - horizon.at);
}

/**
 * The latest `iat` a fleet message may carry at `now`, or undefined when the
 * device can justify no bound: after a boot, until a first message has been
 * accepted — the device may have been off for any length of time.
 */
export function latestAllowedIssue(horizon: FleetHorizon | undefined, now: BootInstant, stepMs = FLEET_TIME_STEP_MS): number | undefined {
  const projected = horizonAt(horizon, now);
  if (projected === undefined || horizon === undefined) return undefined;
  return projected + stepMs + Math.ceil((now.ms - horizon.at) * BOOT_CLOCK_DRIFT);
}

/**
 * The horizon after accepting a message valid until `exp`. It only moves
 * forward within a boot, except with `restart` — the fleet's clock stepped
 * back (a message signed after every other one carries an earlier time) —
 * when it starts again from this message, so that a horizon pushed ahead
 * before is not kept.
 */
export function advanceHorizon(horizon: FleetHorizon | undefined, now: BootInstant, exp: number, restart: boolean): FleetHorizon {
  const projected = restart ? undefined : horizonAt(horizon, now);
  return { boot: now.boot, at: now.ms, until: Math.max(projected ?? 0, exp) };
}

/**
 * Messages refused for the bound in a row, each signed after every message
 * accepted and after the one before it: `count` of them, the first at `since`
 * on the boot clock of `boot`, the last with counter `ctr`.
 */
export const AheadStreakSchema = z.strictObject({
  boot: z.string().check(z.minLength(1), z.maxLength(64)),
  since: count,
  ctr: count,
  count: z.int().check(z.positive()),
});
export type AheadStreak = z.infer<typeof AheadStreakSchema>;

/**
 * The bound cannot tell a fleet clock that jumped from a horizon that lags:
 * when the first message of a boot had waited in a broker past its expiry
 * (MQTT 3.1.1 has no message expiry), every fresh command of that boot would
 * be refused. So the third message in a row beyond the bound, a minute or
 * more after the first, is accepted and the horizon starts again from it. A
 * single message, or a burst of retries, still cannot move fleet time; and if
 * the clock had jumped, the next message the fleet signs with a correct clock
 * brings fleet time back (replay-guard.ts).
 */
export const AHEAD_STREAK_TO_REBASE = 3;
export const AHEAD_STREAK_MIN_SPAN_MS = 60_000;

/** The streak after one more message beyond the bound with counter `ctr`, signed after every accepted one. */
export function extendAheadStreak(streak: AheadStreak | undefined, now: BootInstant, ctr: number): AheadStreak {
  if (streak !== undefined && streak.boot === now.boot && now.ms >= streak.since) {
    if (ctr === streak.ctr) return streak; // the same message delivered again
    if (ctr > streak.ctr) return { ...streak, ctr, count: streak.count + 1 };
  }
  return { boot: now.boot, since: now.ms, ctr, count: 1 };
}

/** True when `streak` justifies accepting its last message and starting the horizon again from it. */
export function streakRebases(streak: AheadStreak, now: BootInstant): boolean {
  return streak.count >= AHEAD_STREAK_TO_REBASE && now.ms - streak.since >= AHEAD_STREAK_MIN_SPAN_MS;
}
