import type { ErrorCode } from '../../protocol/errors.js';

/** The codes a failed pull is reported with (docs/errors.md). */
export type PullFailureCode = Extract<ErrorCode, 'PULL_FAILED' | 'NO_SPACE' | 'DIGEST_MISMATCH'>;

/**
 * The engine's words for content that does not match its digest. Docker:
 * "manifest verification failed for digest sha256:…" (a manifest fetched by
 * digest), "filesystem layer verification failed for digest sha256:…" (a
 * layer); containerd-based engines: "unexpected commit digest …, expected …".
 */
const DIGEST_MISMATCH = /verification failed for digest|unexpected commit digest|digest mismatch/i;
const NO_SPACE = /no space left on device/i;

/**
 * Which code a pull the engine ended with `message` is reported with. Pure.
 * The fleet branches on the code: a full disk frees up, a registry serving
 * wrong content needs someone to look at it, the rest (a network, a tag, the
 * credentials) is what PULL_FAILED covers.
 */
export function pullFailureCode(message: string): PullFailureCode {
  if (NO_SPACE.test(message)) return 'NO_SPACE';
  if (DIGEST_MISMATCH.test(message)) return 'DIGEST_MISMATCH';
  return 'PULL_FAILED';
}

/** What each code adds to the engine's message, so that the report says what it means. */
export const PULL_FAILURE_HINT: Record<PullFailureCode, string | null> = {
  NO_SPACE: "the engine's disk is full",
  DIGEST_MISMATCH: 'the registry sent content that does not match its digest; nothing of it was kept',
  PULL_FAILED: null,
};
