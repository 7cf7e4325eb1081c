/**
 * The one poll-until of the tests: for a condition that has no event to wait on (a file on disk, a
 * row in the fleet's table, a container's state), probe it until it holds or the time is up.
 *
 * `probe` answers with the value waited for, or `undefined`/`false` while it is not there yet;
 * `waitFor` resolves with that value. A boolean probe resolves with `true`.
 */
export type Probe<T> = () => T | undefined | false | Promise<T | undefined | false>;

export interface WaitOptions {
  /** How long between two probes; larger for a probe that runs a process. */
  readonly intervalMs?: number;
  /** What to add to the timeout error, to tell why it did not come (the last report, say). */
  readonly detail?: () => unknown;
}

/** Probe until `probe` answers a value (see {@link Probe}); throws `timed out … waiting for <what>` after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: Probe<T>, timeoutMs = 10_000, options: WaitOptions = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) {
      const detail = options.detail === undefined ? '' : `; ${JSON.stringify(options.detail())}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
}
