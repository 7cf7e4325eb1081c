import type { ReportedState } from '../../protocol/desired.js';

/** How long after a publication a report that does not know it means the device missed it, not merely that the two crossed. */
export const RESEND_AFTER_MS = 3_000;

export type PublicationCheck =
  | { kind: 'known' }
  /** Too soon to tell: look again at `at`. */
  | { kind: 'recheck'; at: number }
  | { kind: 'missed' };

/**
 * Whether a device missed its last publication: RESEND_AFTER_MS after it,
 * the device's latest report still knows neither that version nor a later
 * one. The retained copy can be gone — the embedded broker keeps retained
 * messages in memory, so a `serve` that died took the desired state a device
 * had not fetched yet — while the database says it was sent. A device that
 * never reported is not judged (it has not been online since). Pure.
 */
export function checkPublication(
  report: Pick<ReportedState, 'desiredVersion' | 'appliedVersion'> | undefined,
  last: { version: number; publishedAt: number },
  now: number,
): PublicationCheck {
  if (report === undefined || Math.max(report.desiredVersion ?? 0, report.appliedVersion ?? 0) >= last.version) return { kind: 'known' };
  const due = last.publishedAt + RESEND_AFTER_MS;
  return now < due ? { kind: 'recheck', at: due } : { kind: 'missed' };
}
