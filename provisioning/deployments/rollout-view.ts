import { printable } from '../terminal-text.js';
import type { VerdictReason } from './device-verdict.js';
import { failureCounts, type RolloutMember, type RolloutPhase, type RolloutState } from './rollout-state.js';
import { allowedFailures, formatStrategy, waveSizes, type RolloutStrategy } from './rollout-strategy.js';

/**
 * Where a target stands, as `deployment status` counts it:
 * - `waiting`: no wave has reached it yet (it runs the previous revision);
 * - `pending`, `applying`, `baking`, `offline`: the device's verdict on the new revision;
 * - `healthy`: it stayed healthy through the bake;
 * - `deferred`: the wave deadline passed while it was offline or still working without a fault;
 *   its wave went on without it, and it is judged when it comes back;
 * - `failed`: see the failing list for why; `held-back`: a halt stopped it before it started;
 * - `unstaged`: it got the revision without a wave — the deployment's first revision, or it
 *   matched after the rollout finished — and is not judged by the rollout.
 */
export const StandingValues = ['waiting', 'pending', 'applying', 'baking', 'healthy', 'offline', 'deferred', 'failed', 'held-back', 'unstaged'] as const;
export type Standing = (typeof StandingValues)[number];
export type StandingCounts = Record<Standing, number>;

/** One failed device and why: the service, the device's error, the health verdict. */
export interface FailingDevice {
  deviceId: string;
  /** 1-based, as the operator counts waves. */
  wave: number;
  reason: VerdictReason | null;
  /** It showed a fault until its wave deadline rather than a verdict of its own. */
  timedOut: boolean;
  /** The revision it runs now: the previous one when reverted. */
  revision: number;
}

export interface WaveView {
  /** 1-based. */
  wave: number;
  /** The flag text of this wave (`10%`, `1`). */
  size: string;
  /** Cumulative devices this wave brings the rollout to, for the targets as they are now. */
  upTo: number;
  /** Targets that joined in this wave. */
  devices: number;
  state: 'passed' | 'running' | 'halted' | 'paused' | 'waiting' | 'aborted';
  counts: StandingCounts;
}

/** The `--json` shape of `deployment status NAME` for the rollout part; stable for scripts. */
export interface RolloutView {
  deployment: string;
  fromRevision: number | null;
  toRevision: number;
  phase: RolloutPhase;
  strategy: RolloutStrategy;
  /** The strategy as the flags that would give it. */
  strategyFlags: string;
  startedAt: number;
  updatedAt: number;
  /** 1-based current wave, 0 before the first started. */
  wave: number;
  waves: WaveView[];
  targets: number;
  counts: StandingCounts;
  failures: { failed: number; tried: number; allowed: number };
  halt: RolloutState['halt'];
  failing: FailingDevice[];
}

function emptyCounts(): StandingCounts {
  return Object.fromEntries(StandingValues.map((s) => [s, 0])) as StandingCounts;
}

export function standing(state: RolloutState, m: RolloutMember): Standing {
  if (m.outcome === 'failed') return 'failed';
  if (m.outcome === 'healthy') return 'healthy';
  if (m.revision !== state.toRevision) return 'held-back';
  if (m.outcome === 'deferred' && (m.verdict === 'pending' || m.verdict === 'offline')) return 'deferred';
  // A healthy verdict is recorded as the outcome in the same pass; any other verdict is shown as it is.
  return m.verdict === 'healthy' ? 'baking' : m.verdict;
}

/** Pure: the rollout as `deployment status` shows it, for the targets the selector matches now. */
export function rolloutView(state: RolloutState, targets: readonly string[]): RolloutView {
  const targetSet = new Set(targets);
  const sizes = waveSizes(state.strategy.waves, targets.length);
  const waves: WaveView[] = state.strategy.waves.map((w, i) => ({
    wave: i + 1, size: 'count' in w ? String(w.count) : `${w.percent}%`, upTo: sizes[i] ?? 0, devices: 0, state: waveState(state, i), counts: emptyCounts(),
  }));
  const counts = emptyCounts();
  for (const [id, m] of Object.entries(state.members)) {
    if (!targetSet.has(id)) continue;
    const s = standing(state, m);
    counts[s] += 1;
    const w = waves[m.wave];
    if (w !== undefined) {
      w.devices += 1;
      w.counts[s] += 1;
    }
  }
  const members = Object.keys(state.members).filter((id) => targetSet.has(id)).length;
  counts[state.phase === 'done' ? 'unstaged' : 'waiting'] = targets.length - members;
  const { failures, tried } = failureCounts(state);
  const failing = Object.entries(state.members)
    .filter(([, m]) => m.outcome === 'failed')
    .map(([deviceId, m]): FailingDevice => ({ deviceId, wave: m.wave + 1, reason: m.reason, timedOut: m.timedOut, revision: m.revision }))
    .sort((a, b) => a.wave - b.wave || (a.deviceId < b.deviceId ? -1 : 1));
  return {
    deployment: state.deployment, fromRevision: state.fromRevision, toRevision: state.toRevision, phase: state.phase,
    strategy: state.strategy, strategyFlags: formatStrategy(state.strategy), startedAt: state.startedAt, updatedAt: state.updatedAt,
    wave: state.wave + 1, waves, targets: targets.length, counts,
    failures: { failed: failures, tried, allowed: allowedFailures(state.strategy.maxFailures, tried) },
    halt: state.halt, failing,
  };
}

function waveState(state: RolloutState, i: number): WaveView['state'] {
  if (state.phase === 'done') return 'passed';
  if (state.phase === 'aborted') return i <= state.wave ? 'aborted' : 'waiting';
  if (i < state.wave) return 'passed';
  if (i > state.wave) return 'waiting';
  return state.phase === 'running' ? 'running' : state.phase;
}

/** `[██████░░░░░░]`: the share of `part` in `whole`; empty for an empty whole. */
export function progressBar(part: number, whole: number, width = 20): string {
  const filled = whole <= 0 ? 0 : Math.min(width, Math.round((part / whole) * width));
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]`;
}

const ORDER: readonly Standing[] = ['healthy', 'baking', 'applying', 'pending', 'offline', 'deferred', 'failed', 'held-back', 'waiting', 'unstaged'];

function countsLine(counts: StandingCounts, skipZero: boolean): string {
  return ORDER.filter((s) => !skipZero || counts[s] > 0).map((s) => `${counts[s]} ${s}`).join(' · ');
}

function oneLine(text: string): string {
  return printable(text.replace(/\s*\n\s*/g, ' '));
}

function reasonText(r: VerdictReason | null): string {
  if (r === null) return 'no reason reported';
  const parts = [r.service, r.code, r.health !== undefined && r.health !== 'none' ? `health ${r.health}` : undefined, r.state !== undefined && r.state !== 'running' ? r.state : undefined]
    .filter((p): p is string => p !== undefined && p !== '');
  const message = r.message === undefined ? '' : ` "${r.message}"`;
  return oneLine(`${parts.join(' ')}${message}`);
}

function phaseText(v: RolloutView, time: (ms: number) => string): string {
  switch (v.phase) {
    case 'running': return v.wave === 0 ? 'starting' : `running, wave ${v.wave} of ${v.waves.length}`;
    case 'paused': return `paused at wave ${v.wave} of ${v.waves.length} (deployment resume ${v.deployment})`;
    case 'done': return 'done: every wave passed';
    case 'aborted': return `aborted: every device is back on revision ${v.fromRevision ?? '?'}`;
    case 'halted': return `HALTED at wave ${v.wave} of ${v.waves.length} at ${time(v.halt?.at ?? v.updatedAt)}: ${v.halt?.failures ?? 0} failed of ${v.halt?.tried ?? 0} tried, ${v.halt?.allowed ?? 0} allowed`;
  }
}

export interface TextOptions {
  /** How times are shown (default ISO in UTC). */
  time?: (ms: number) => string;
  /** Failing devices listed; the rest are counted. */
  maxFailing?: number;
}

/** Pure: the text of `deployment status NAME`'s rollout part; `--watch` redraws it. Device text is made printable. */
export function renderRolloutText(v: RolloutView, options: TextOptions = {}): string {
  const time = options.time ?? ((ms: number) => new Date(ms).toISOString());
  const maxFailing = options.maxFailing ?? 20;
  const from = v.fromRevision === null ? 'nothing' : `revision ${v.fromRevision}`;
  const lines = [
    `rollout of ${v.deployment}: ${from} → revision ${v.toRevision}, ${phaseText(v, time)}`,
    `  strategy  ${v.strategyFlags}`,
  ];
  if (v.fromRevision !== null) {
    for (const w of v.waves) {
      const done = w.counts.healthy + w.counts.failed + w.counts.deferred + w.counts['held-back'];
      const head = `  wave ${w.wave}  ${w.size.padStart(4)} → ${String(w.upTo).padStart(5)}  ${w.state.padEnd(7)}`;
      lines.push(w.devices === 0 ? head : `${head}  ${progressBar(done, w.devices)} ${done}/${w.devices}  ${countsLine(w.counts, true)}`);
    }
  }
  lines.push(`  devices   ${v.targets} target(s): ${countsLine(v.counts, true) || 'none'}`);
  lines.push(`  failures  ${v.failures.failed} of ${v.failures.tried} tried, ${v.failures.allowed} allowed; ${v.strategy.onHalt === 'revert' ? 'failed devices go back to the previous revision' : 'failed devices are left as they are (--on-halt hold)'}`);
  if (v.failing.length > 0) {
    lines.push('  failing');
    for (const f of v.failing.slice(0, maxFailing)) {
      const back = f.revision !== v.toRevision ? `, back on revision ${f.revision}` : '';
      lines.push(`    ${printable(f.deviceId)}  wave ${f.wave}  ${reasonText(f.reason)}${f.timedOut ? ' (until the wave deadline)' : ''}${back}`);
    }
    if (v.failing.length > maxFailing) lines.push(`    … and ${v.failing.length - maxFailing} more (--json lists them all)`);
  }
  return `${lines.join('\n')}\n`;
}
