import type { ActualState } from './actual-state.js';
import type { DesiredService } from '../../protocol/compose/desired-service.js';
import { judgeProbation, resumedProbation } from './probation.js';
import type { BackoffState } from './restart-backoff.js';

/** A service whose new configuration failed its probation; `previous` is what it returned to, if anything. */
export interface ProbationFailure {
  service: string;
  reason: string;
  /** The last good version's configuration of the service; undefined when there is none (a new service). */
  previous: DesiredService | undefined;
  previousVersion: string | undefined;
}

type Hashed = ReadonlyMap<string, { hash: string; spec: DesiredService }>;

/**
 * The memory of a health-gated rollout: the last version that ran well, the
 * services on probation, and those whose new configuration failed. A plain
 * value; the functions below return a new one and ask `judgeProbation`.
 * Across an agent restart: the last good version is handed back by the
 * caller (`restoreLastGood`, from the signed message it kept when
 * `succeeded` said so), and the probations that were running are resumed
 * from the containers (`resume`), so that a restart neither skips a
 * probation nor makes an unproven version the one to return to.
 */
export interface Rollout {
  /** 0: probation is off. */
  readonly probationMs: number;
  readonly lastGood: { version: string; services: Hashed } | undefined;
  /** Service name → config hash under probation. */
  readonly probation: ReadonlyMap<string, string>;
  readonly failed: ReadonlyMap<string, ProbationFailure>;
  /**
   * Failures seen but not yet acted on: an engine going down stops every
   * container before its event stream ends, which looks exactly like a
   * crash. A failure is confirmed only when it has stood for `settleMs`
   * without the engine going away meanwhile.
   */
  readonly suspects: ReadonlyMap<string, { reason: string; at: number }>;
}

export function newRollout(probationMs: number): Rollout {
  return { probationMs, lastGood: undefined, probation: new Map(), failed: new Map(), suspects: new Map() };
}

const hashed = (services: DesiredService[], hashOf: (s: DesiredService) => string): Hashed =>
  new Map(services.map((s) => [s.name, { hash: hashOf(s), spec: s }]));

/** A new version: its failures and probations start afresh. */
export function resetRollout(r: Rollout): Rollout {
  return { ...r, probation: new Map(), failed: new Map(), suspects: new Map() };
}

/** The last good version as kept across a restart; ignored once one is known here. */
export function restoreLastGood(r: Rollout, version: string, services: DesiredService[], hashOf: (s: DesiredService) => string): Rollout {
  return r.lastGood !== undefined ? r : { ...r, lastGood: { version, services: hashed(services, hashOf) } };
}

/** The first judgement after an agent restart: the probations that ran when it stopped go on, each from its container's start. */
export function resume(r: Rollout, actual: ActualState, services: DesiredService[], version: string, hashOf: (s: DesiredService) => string): Rollout {
  if (r.probationMs <= 0) return r;
  const lastGood = r.lastGood === undefined ? undefined : new Map([...r.lastGood.services].map(([name, g]) => [name, g.hash]));
  const probation = new Map(r.probation);
  for (const [service, hash] of resumedProbation(actual, services, version, lastGood, hashOf)) {
    if (!r.failed.has(service)) probation.set(service, hash);
  }
  return { ...r, probation };
}

/** The engine went away: what looked like failures may have been its shutdown. */
export function engineLost(r: Rollout): Rollout {
  return r.suspects.size === 0 ? r : { ...r, suspects: new Map() };
}

/** A container was created for `service`: a configuration other than the last good one goes on probation. */
export function created(r: Rollout, service: string, hash: string): Rollout {
  if (r.probationMs <= 0 || r.failed.has(service)) return r;
  if (r.lastGood?.services.get(service)?.hash === hash) return r;
  return { ...r, probation: new Map(r.probation).set(service, hash) };
}

/**
 * Judge the services on probation against what the engine shows. Returns
 * the new failures (the caller swaps in `previous`) and when to look again.
 */
export function judge(
  r: Rollout, actual: ActualState, services: DesiredService[], restartBackoff: BackoffState, now: number, settleMs: number,
): { rollout: Rollout; failures: ProbationFailure[]; nextCheckAt: number | null } {
  if (r.probation.size === 0) return { rollout: r, failures: [], nextCheckAt: null };
  const judged = judgeProbation({ actual, services, onProbation: r.probation, restartBackoff, now, probationMs: r.probationMs });
  let nextCheckAt = judged.nextCheckAt;
  const failures: ProbationFailure[] = [];
  const probation = new Map(r.probation);
  const failed = new Map(r.failed);
  // A suspect that no longer fails (its container runs again) is no suspect: a later failure starts its own settle time.
  const failing = new Set(judged.verdicts.filter((v) => v.outcome === 'failed').map((v) => v.service));
  const suspects = new Map([...r.suspects].filter(([service]) => failing.has(service)));
  for (const v of judged.verdicts) {
    if (v.outcome === 'failed') {
      const suspect = suspects.get(v.service) ?? { reason: v.reason, at: now };
      suspects.set(v.service, suspect);
      if (now < suspect.at + settleMs) {
        nextCheckAt = Math.min(nextCheckAt ?? Infinity, suspect.at + settleMs);
        continue;
      }
    }
    const failingHash = probation.get(v.service);
    probation.delete(v.service);
    suspects.delete(v.service);
    if (v.outcome === 'passed') continue;
    const good = r.lastGood?.services.get(v.service);
    const failure: ProbationFailure = {
      service: v.service, reason: v.reason,
      previous: good !== undefined && good.hash !== failingHash ? good.spec : undefined,
      previousVersion: r.lastGood?.version,
    };
    failed.set(v.service, failure);
    failures.push(failure);
  }
  return { rollout: { ...r, probation, failed, suspects }, failures, nextCheckAt };
}

/** Probations still open: the version is not applied before they end. */
export function probationPending(r: Rollout): boolean {
  return r.probation.size > 0;
}

/** Images of the last good version: what a rollback needs on disk, so image GC keeps them. */
export function rollbackImages(r: Rollout): string[] {
  return [...(r.lastGood?.services.values() ?? [])].map((g) => g.spec.image);
}

export function probationFailures(r: Rollout): ProbationFailure[] {
  return [...r.failed.values()];
}

/** The version ran well (synced, nothing failed): it is the one to return to from now on. `news` when it was not already. */
export function succeeded(r: Rollout, version: string, services: DesiredService[], hashOf: (s: DesiredService) => string): { rollout: Rollout; news: boolean } {
  if (r.failed.size > 0 || r.probation.size > 0) return { rollout: r, news: false };
  return { rollout: { ...r, lastGood: { version, services: hashed(services, hashOf) } }, news: r.lastGood?.version !== version };
}
