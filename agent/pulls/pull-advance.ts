import type { PullProgress } from '../supervisor/container-runtime.js';

/** The part of a pull event that tells whether the pull moved. */
export type PullEvent = Pick<PullProgress, 'id' | 'status' | 'progress'>;

/** The engine's countdown before it tries a layer again ("Retrying in 5 seconds"): waiting, not moving. */
const RETRYING = /^retrying in\b/i;

/**
 * Tells, event by event, whether a pull moves forward: the basis of the
 * stall deadline (pull-stall-deadline.ts). Events keep coming from a pull
 * that goes nowhere — the engine downloading the same bad layer again and
 * again, counting down between attempts — so "an event arrived" is not
 * progress. Progress is:
 *
 * - for an event with a byte count (Downloading, Extracting), fewer bytes
 *   left of that item in that phase than ever before. Bytes *left*, not
 *   bytes done: a download the engine resumes after a cut counts from zero
 *   again over a smaller total, and what is left still shrinks; a download
 *   started over from the beginning does not move until it passes where
 *   the last one got;
 * - any other event the first time it is seen for its item ("Verifying
 *   Checksum", "Download complete", "Pull complete", or whatever text an
 *   engine other than Docker sends), except the retry countdown.
 *
 * Pure apart from its own memory; one instance per pull.
 */
export class PullAdvance {
  private readonly seen = new Set<string>();
  /** Bytes left, the fewest seen, per item and phase. */
  private readonly fewestLeft = new Map<string, number>();

  /** Whether `event` shows the pull moving forward. */
  advanced(event: PullEvent): boolean {
    const status = event.status.trim();
    if (RETRYING.test(status)) return false;
    const key = `${event.id ?? ''}\n${status}`;
    if (event.progress !== null && event.progress.total > 0) {
      const left = Math.max(0, event.progress.total - event.progress.current);
      const fewest = this.fewestLeft.get(key);
      if (fewest !== undefined && left >= fewest) return false;
      this.fewestLeft.set(key, left);
      return true;
    }
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    return true;
  }
}
