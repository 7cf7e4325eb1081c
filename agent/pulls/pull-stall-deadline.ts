import { TsunaguError } from '../../protocol/errors.js';
import type { PullProgress } from '../supervisor/container-runtime.js';
import { PullAdvance } from './pull-advance.js';

/**
 * Default of `runtime.pullStallMs`: how long a pull may go without moving
 * forward. Docker reports a download every 512 KiB (or 1 % of the layer),
 * so five minutes still lets a link of about 2 KB/s through; a slower one
 * needs a longer deadline.
 */
export const DEFAULT_PULL_STALL_MS = 300_000;

/**
 * Run a pull under a stall deadline: when no event moves it forward
 * (PullAdvance) for `stallMs`, the pull is aborted and fails with
 * PULL_FAILED, so that it is reported and retried with the pull back-off
 * like any failed pull. Without it a pull can hang for good: the engine
 * reads a registry that stops sending without a timeout, and tries a layer
 * that keeps failing again and again inside one pull. The deadline counts
 * from the start too (a registry that never answers). `stallMs` 0: none.
 *
 * `run` gets the signal to pull under and the progress callback to report
 * through; an abort of `signal` (shutdown, a newer desired state) passes
 * through as it is.
 */
export async function withStallDeadline(
  image: string,
  stallMs: number,
  signal: AbortSignal,
  onProgress: ((p: PullProgress) => void) | undefined,
  run: (signal: AbortSignal, onProgress: (p: PullProgress) => void) => Promise<void>,
): Promise<void> {
  if (stallMs <= 0) return run(signal, (p) => onProgress?.(p));
  const controller = new AbortController();
  const pass = (): void => controller.abort(signal.reason);
  if (signal.aborted) pass();
  else signal.addEventListener('abort', pass, { once: true });
  const advance = new PullAdvance();
  let last = 'no answer from the engine yet';
  let stalled = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => { stalled = true; controller.abort(); }, stallMs);
  };
  arm();
  try {
    await run(controller.signal, (p) => {
      if (advance.advanced(p)) arm();
      last = p.id === null ? p.status : `${p.id}: ${p.status}`;
      onProgress?.(p);
    });
  } catch (err) {
    if (!stalled || signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', pass);
  }
  // Checked after the pull too: a pull cut by the deadline may still end as if it succeeded.
  if (stalled && !signal.aborted) {
    throw new TsunaguError('PULL_FAILED', `pull ${image}: no progress for ${Math.round(stallMs / 1000)} s (last: ${last}); stopped, to be tried again`);
  }
}
