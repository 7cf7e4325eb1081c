import * as z from 'zod/mini';

/** Exponential back-off: delay = initial × 2^(failures-1), capped; forgotten after a stable period. */
export interface BackoffPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  /** A container that ran at least this long before exiting starts a fresh count. */
  resetAfterMs: number;
}

/**
 * Crash-loop defaults. The first retry comes after 2 s, sooner than
 * kubelet's and Azure IoT Edge's 10 s: on a device the usual cause of an
 * early exit is a neighbour not ready yet, and a fast first retry hides it.
 * The cap is their 300 s: a broken service then costs one start every five
 * minutes, little CPU and SD-card log churn, and still recovers by itself
 * when what it needs comes back (we never give up, unlike Greengrass's
 * BROKEN state that waits for an operator who may be months away). A count
 * resets after 10 min of running (Azure's period): a service dying after
 * five minutes every time is still crash-looping.
 */
export const DEFAULT_RESTART_BACKOFF: BackoffPolicy = { initialDelayMs: 2_000, maxDelayMs: 300_000, resetAfterMs: 600_000 };

/** Image pulls: balena's 500 ms × 2^n, capped at 5 min so a registry outage is not hammered. */
export const DEFAULT_PULL_BACKOFF: BackoffPolicy = { initialDelayMs: 500, maxDelayMs: 300_000, resetAfterMs: 0 };

export const backoffEntrySchema = z.object({
  /** Consecutive failures counted towards the delay. */
  failures: z.int().check(z.minimum(0)),
  /** Every failure ever recorded, for reports; never reset. */
  total: z.int().check(z.minimum(0)),
  /** Wall-clock ms before which no retry is made. */
  nextAttemptAt: z.number(),
  lastExitCode: z.nullable(z.int()),
  /** Identifies the failure already counted (container id and finish time), so one exit is never counted twice. */
  lastFailureKey: z.nullable(z.string()),
  /**
   * The configuration that failed. A back-off holds only that configuration
   * back: a new one (the operator's fix) starts at once, with a fresh count.
   */
  configHash: z._default(z.nullable(z.string()), null),
});

export type BackoffEntry = z.infer<typeof backoffEntrySchema>;

/** Back-off per key (service name or image reference); plain JSON so it survives agent restarts. */
export const backoffStateSchema = z.record(z.string(), backoffEntrySchema);
export type BackoffState = z.infer<typeof backoffStateSchema>;

export function backoffDelay(failures: number, policy: BackoffPolicy): number {
  if (failures <= 0) return 0;
  // 2^30 already dwarfs any cap; bounding the exponent keeps the number finite.
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(failures - 1, 30));
}

export interface Failure {
  /** When the failure was seen, wall-clock ms. */
  at: number;
  /** Unique per failure; a key equal to the last one recorded is ignored. */
  key: string;
  exitCode?: number | null;
  /** How long the container had run; long runs reset the count first. */
  ranForMs?: number;
  /** The configuration that failed; a failure of another configuration than the last starts a fresh count. */
  configHash?: string | null;
}

/** Record one failure and return the new entry; `entry` is not modified. */
export function recordFailure(entry: BackoffEntry | undefined, failure: Failure, policy: BackoffPolicy): BackoffEntry {
  if (entry !== undefined && entry.lastFailureKey === failure.key) return entry;
  const stable = failure.ranForMs !== undefined && policy.resetAfterMs > 0 && failure.ranForMs >= policy.resetAfterMs;
  const configHash = failure.configHash ?? null;
  const sameConfig = entry !== undefined && entry.configHash === configHash;
  const failures = (stable || !sameConfig ? 0 : entry.failures) + 1;
  return {
    failures,
    total: (entry?.total ?? 0) + 1,
    nextAttemptAt: failure.at + backoffDelay(failures, policy),
    lastExitCode: failure.exitCode ?? entry?.lastExitCode ?? null,
    lastFailureKey: failure.key,
    configHash,
  };
}

/** True while a retry must wait; with `configHash`, only if that configuration is the one that failed. */
export function isBackingOff(entry: BackoffEntry | undefined, now: number, configHash?: string): boolean {
  if (entry === undefined || now >= entry.nextAttemptAt) return false;
  return configHash === undefined || entry.configHash === null || entry.configHash === configHash;
}

/** After a success (a pull that worked): forget the count but keep the totals for reports. */
export function recordSuccess(entry: BackoffEntry | undefined): BackoffEntry | undefined {
  return entry === undefined ? undefined : { ...entry, failures: 0, nextAttemptAt: 0 };
}

/**
 * Guard against a clock that jumped backwards (a device without RTC booting
 * in 1970 and then syncing): a wait longer than the cap is cut to the cap.
 */
export function clampToClock(entry: BackoffEntry, now: number, policy: BackoffPolicy): BackoffEntry {
  return entry.nextAttemptAt - now > policy.maxDelayMs ? { ...entry, nextAttemptAt: now + policy.maxDelayMs } : entry;
}
