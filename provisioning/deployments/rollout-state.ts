import { createHash } from 'node:crypto';
import * as z from 'zod';
import type { ReportedState } from '../../protocol/desired.js';
import { TsunaguError } from '../../protocol/errors.js';
import { VerdictReasonSchema, VerdictValues, type VerdictReason } from './device-verdict.js';
import { RolloutStrategySchema, OnHaltValues } from './rollout-strategy.js';

/**
 * - `running`: waves advance as they pass;
 * - `paused`: an operator froze it: no wave starts, devices already given the revision are still judged;
 * - `halted`: too many failures; final (a new revision or `abort` ends it);
 * - `done`: every wave passed; a device that matches later gets the new revision at once;
 * - `aborted`: every device is back on the previous revision.
 */
export const RolloutPhaseValues = ['running', 'paused', 'halted', 'done', 'aborted'] as const;
export type RolloutPhase = (typeof RolloutPhaseValues)[number];

/**
 * How a wave member ended for its wave: `healthy` (baked), `failed`, or `deferred` (the wave
 * deadline passed while it was offline or still working without a fault). Deferred may still
 * become healthy or failed later; healthy and failed are final.
 */
export const OutcomeValues = ['healthy', 'failed', 'deferred'] as const;
export type Outcome = (typeof OutcomeValues)[number];

const time = z.int().min(0);

export const RolloutMemberSchema = z.strictObject({
  /** The wave it joined (0-based). */
  wave: z.int().min(0),
  /** The revision assigned now: the rollout's `to`, or `from` once reverted or held back. */
  revision: z.int().min(1),
  /** When it was given the new revision; its wave deadline runs from here. */
  assignedAt: time,
  verdict: z.enum(VerdictValues),
  reason: z.nullable(VerdictReasonSchema),
  bakeStartedAt: z.nullable(time),
  /** It took the revision up (applying or further) at least once: it counts among the devices tried. */
  started: z.boolean(),
  outcome: z.nullable(z.enum(OutcomeValues)),
  /** A failure found by the wave deadline (a fault shown for too long), not by the device's own verdict. */
  timedOut: z.boolean(),
});
export type RolloutMember = z.infer<typeof RolloutMemberSchema>;

export const RolloutStateSchema = z.strictObject({
  v: z.literal(1),
  deployment: z.string().min(1).max(128),
  /** The revision the targets ran before; null for a deployment's first revision (which is not staged). */
  fromRevision: z.nullable(z.int().min(1)),
  toRevision: z.int().min(1),
  strategy: RolloutStrategySchema,
  phase: z.enum(RolloutPhaseValues),
  /** The current wave, -1 before the first has started. */
  wave: z.int().min(-1),
  waveStartedAt: z.nullable(time),
  startedAt: time,
  updatedAt: time,
  halt: z.nullable(z.strictObject({ at: time, failures: z.int().min(0), tried: z.int().min(0), allowed: z.int().min(0), onHalt: z.enum(OnHaltValues) })),
  members: z.record(z.string(), RolloutMemberSchema),
  /**
   * Devices that ran a superseded revision (a rollout replaced mid-way by a newer one): they keep
   * it until a wave of this rollout reaches them, rather than stepping back to `from` and then
   * forward again.
   */
  carried: z.record(z.string(), z.int().min(1)),
});
export type RolloutState = z.infer<typeof RolloutStateSchema>;

/** Read a state back from the database; a row that does not parse is reported, not guessed at. */
export function rolloutStateFromJson(value: unknown): RolloutState {
  const r = RolloutStateSchema.safeParse(value);
  if (!r.success) throw new TsunaguError('SCHEMA', `stored rollout state: ${r.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** What the reconciler knows of one target device. */
export interface DeviceObservation {
  online: boolean;
  /** The device's retained `state` report, null before its first. */
  reported: ReportedState | null;
  /**
   * A desired-state version published to the device that carried this deployment at `revision`
   * (the revision it was last assigned): the first such version, or the latest (then the device
   * must also have applied the later one, which a layer's change may have sent); null before any.
   */
  published: { revision: number; version: number } | null;
  /** The services this deployment contributes on the device (after layering), to attribute failures. */
  services?: ReadonlySet<string>;
}

/** Events go to the audit log as they are; `wave` in them counts from 1, as the operator does. */
interface EventBase { at: number; deployment: string }
export type RolloutEvent = EventBase & (
  | { type: 'started'; fromRevision: number | null; toRevision: number }
  | { type: 'superseded'; supersededRevision: number; toRevision: number }
  | { type: 'wave-started'; wave: number; devices: number; of: number }
  | { type: 'wave-passed'; wave: number; healthy: number; failed: number; deferred: number }
  | { type: 'device-failed'; deviceId: string; wave: number; reason: VerdictReason | null; timedOut: boolean }
  | { type: 'device-reverted'; deviceId: string; revision: number }
  | { type: 'device-deferred'; deviceId: string; wave: number; verdict: string }
  | { type: 'halted'; failures: number; tried: number; allowed: number; onHalt: 'revert' | 'hold'; heldBack: number }
  | { type: 'done'; healthy: number; failed: number; deferred: number }
  | { type: 'paused' }
  | { type: 'resumed' }
  | { type: 'aborted'; devices: number }
);
export type RolloutEventType = RolloutEvent['type'];

/**
 * The deterministic order in which targets join waves: by a hash of deployment, revision and
 * device id, so each revision picks a different canary, two `serve` instances agree, and a
 * restart picks the same devices. Devices carried over from a superseded revision come first:
 * they already changed once and are the ones to move on.
 */
export function waveOrder(state: Pick<RolloutState, 'deployment' | 'toRevision' | 'carried'>, deviceIds: readonly string[]): string[] {
  const key = (id: string): string => `${id in state.carried ? '0' : '1'}${createHash('sha256').update(`${state.deployment}\n${state.toRevision}\n${id}`).digest('hex')}`;
  return deviceIds.map((id) => ({ id, k: key(id) })).sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0)).map((e) => e.id);
}

/** Failures and devices tried so far, over every member (also those that stopped matching: their failure happened). */
export function failureCounts(state: RolloutState): { failures: number; tried: number } {
  let failures = 0;
  let tried = 0;
  for (const m of Object.values(state.members)) {
    if (m.outcome === 'failed') failures += 1;
    if (m.started || m.outcome === 'failed') tried += 1;
  }
  return { failures, tried };
}
