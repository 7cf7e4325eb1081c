/**
 * The wall clock, as a port: Unix milliseconds. The composition root
 * (main.ts) builds `systemClock` once and hands it down; tests give one that
 * says what they need (1970, a step forward). Durations do not use it: they
 * use the monotonic clock, which no one sets.
 */
export interface Clock {
  now(): number;
}

/** The adapter: the process's wall clock. */
export const systemClock: Clock = { now: () => Date.now() };
