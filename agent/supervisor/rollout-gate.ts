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

/**
 * The memory of a health-gated rollout: the last version that ran well, the
 * services on probation, and those whose new configuration failed. The
 * supervisor owns the I/O; this holds state and asks `judgeProbation`.
 * Across an agent restart: the last good version is handed back by the
 * caller (`restore`, from the signed message it kept when `succeeded` said
 * so), and the probations that were running are resumed from the
 * containers (`resume`), so that a restart neither skips a probation nor
 * makes an unproven version the one to return to.
 */
export class RolloutGate {
  private lastGood: { version: string; services: Map<string, { hash: string; spec: DesiredService }> } | undefined;
  private readonly probation = new Map<string, string>();
  private readonly failed = new Map<string, ProbationFailure>();
  /**
   * Failures seen but not yet acted on: an engine going down stops every
   * container before its event stream ends, which looks exactly like a
   * crash. A failure is confirmed only when it has stood for `settleMs`
   * without the engine going away meanwhile.
   */
  private readonly suspects = new Map<string, { reason: string; at: number }>();

  constructor(private readonly probationMs: number) {}

  get enabled(): boolean {
    return this.probationMs > 0;
  }

  /** A new version: its failures and probations start afresh. */
  reset(): void {
    this.probation.clear();
    this.failed.clear();
    this.suspects.clear();
  }

  /** The last good version as kept across a restart; ignored once one is known here. */
  restore(version: string, services: DesiredService[], hashOf: (s: DesiredService) => string): void {
    this.lastGood ??= { version, services: new Map(services.map((s) => [s.name, { hash: hashOf(s), spec: s }])) };
  }

  /**
   * The first judgement after an agent restart: the probations that ran when
   * it stopped go on, each from its container's start.
   */
  resume(actual: ActualState, services: DesiredService[], version: string, hashOf: (s: DesiredService) => string): void {
    if (!this.enabled) return;
    const lastGood = this.lastGood === undefined ? undefined : new Map([...this.lastGood.services].map(([name, g]) => [name, g.hash]));
    for (const [service, hash] of resumedProbation(actual, services, version, lastGood, hashOf)) {
      if (!this.failed.has(service)) this.probation.set(service, hash);
    }
  }

  /** The version that a rollback returns to now. */
  get lastGoodVersion(): string | undefined {
    return this.lastGood?.version;
  }

  /** The engine went away: what looked like failures may have been its shutdown. */
  engineLost(): void {
    this.suspects.clear();
  }

  /** A container was created for `service`: a configuration other than the last good one goes on probation. */
  created(service: string, hash: string): void {
    if (!this.enabled || this.failed.has(service)) return;
    if (this.lastGood?.services.get(service)?.hash !== hash) this.probation.set(service, hash);
  }

  /**
   * Judge the services on probation against what the engine shows. Returns
   * the new failures (the caller swaps in `previous`) and when to look again.
   */
  judge(
    actual: ActualState, services: DesiredService[], restartBackoff: BackoffState, now: number, settleMs: number,
  ): { failures: ProbationFailure[]; nextCheckAt: number | null } {
    if (this.probation.size === 0) return { failures: [], nextCheckAt: null };
    const judged = judgeProbation({ actual, services, onProbation: this.probation, restartBackoff, now, probationMs: this.probationMs });
    let nextCheckAt = judged.nextCheckAt;
    const failures: ProbationFailure[] = [];
    // A suspect that no longer fails (its container runs again) is no suspect: a later failure starts its own settle time.
    const failing = new Set(judged.verdicts.filter((v) => v.outcome === 'failed').map((v) => v.service));
    for (const service of this.suspects.keys()) if (!failing.has(service)) this.suspects.delete(service);
    for (const v of judged.verdicts) {
      if (v.outcome === 'failed') {
        const suspect = this.suspects.get(v.service) ?? { reason: v.reason, at: now };
        this.suspects.set(v.service, suspect);
        if (now < suspect.at + settleMs) {
          nextCheckAt = Math.min(nextCheckAt ?? Infinity, suspect.at + settleMs);
          continue;
        }
      }
      const failingHash = this.probation.get(v.service);
      this.probation.delete(v.service);
      this.suspects.delete(v.service);
      if (v.outcome === 'passed') continue;
      const good = this.lastGood?.services.get(v.service);
      const failure: ProbationFailure = {
        service: v.service, reason: v.reason,
        previous: good !== undefined && good.hash !== failingHash ? good.spec : undefined,
        previousVersion: this.lastGood?.version,
      };
      this.failed.set(v.service, failure);
      failures.push(failure);
    }
    return { failures, nextCheckAt };
  }

  /** Probations still open: the version is not applied before they end. */
  get pending(): boolean {
    return this.probation.size > 0;
  }

  /** Images of the last good version: what a rollback needs on disk, so image GC keeps them. */
  rollbackImages(): string[] {
    return [...(this.lastGood?.services.values() ?? [])].map((g) => g.spec.image);
  }

  failures(): ProbationFailure[] {
    return [...this.failed.values()];
  }

  /** The version ran well (synced, nothing failed): it is the one to return to from now on. True when that is news. */
  succeeded(version: string, services: DesiredService[], hashOf: (s: DesiredService) => string): boolean {
    if (this.failed.size > 0 || this.probation.size > 0) return false;
    const before = this.lastGood;
    this.lastGood = { version, services: new Map(services.map((s) => [s.name, { hash: hashOf(s), spec: s }])) };
    return before?.version !== version;
  }
}
