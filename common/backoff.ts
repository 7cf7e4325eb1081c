/**
 * Capped exponential back-off with full jitter: the delay before attempt n
 * (0-based) is uniform in [0, min(cap, max(floor, base·2ⁿ))]. Full jitter
 * spreads a fleet that lost its broker at the same instant over the whole
 * window instead of having it return in synchronized waves.
 */
export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
  /**
   * The narrowest window, still capped. Without it the first window is
   * [0, base): a fleet dropped at one instant (a broker restart) would be
   * back within one base period, all of it — the burst the jitter is for.
   */
  floorMs?: number;
}

export function fullJitterDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, Math.max(policy.floorMs ?? 0, policy.baseMs * 2 ** Math.min(attempt, 30)));
  return Math.floor(random() * ceiling);
}

/** Sleep that ends early (rejecting) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
